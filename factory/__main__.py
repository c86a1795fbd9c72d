from factory.cli import run

run()
