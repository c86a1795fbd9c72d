source "null" "a" { communicator = "none" }
source "null" "b" { communicator = "none" }
build {
  name    = "bld"
  sources = ["source.null.a", "source.null.b"]
  provisioner "shell-local" { inline = ["echo prov-${source.name}"] }
  post-processor "shell-local" {
    name   = "announce"
    inline = ["echo pp-announce"]
  }
  post-processor "shell-local" {
    inline = ["echo pp-anon"]
  }
}
