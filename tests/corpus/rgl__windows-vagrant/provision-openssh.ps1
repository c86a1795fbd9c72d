# stub: validated, never run
