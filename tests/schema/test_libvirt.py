"""`source "libvirt"`: the community plugin's templates load; nested blocks are checked with file:line and hints."""

from __future__ import annotations

from pathlib import Path

import pytest

from factory.errors import FactoryError
from factory.schema.libvirt import LibvirtSource
from factory.template import load

# The plugin's documented example (docs/builders/libvirt.mdx), plus its communicator block and a cloud-init seed.
PLUGIN_EXAMPLE = '''
source "libvirt" "example" {
  libvirt_uri = "qemu:///system"
  vcpu        = 2
  memory      = 2048
  cpu_mode    = "host-passthrough"
  shutdown_mode    = "acpi"
  shutdown_timeout = "2m"
  network_address_source = "lease"
  communicator {
    communicator = "ssh"
    ssh_username = "ubuntu"
    ssh_timeout  = "10m"
  }
  network_interface {
    type  = "managed"
    alias = "communicator"
  }
  graphics {
    type = "vnc"
    port = 0
  }
  volume {
    alias = "artifact"
    source {
      type   = "backing-store"
      pool   = "base-images"
      volume = "ubuntu-22.04-base"
    }
    capacity   = "10G"
    target_dev = "sda"
    bus        = "sata"
  }
  volume {
    target_dev = "sdb"
    bus        = "sata"
    source {
      type      = "cloud-init"
      meta_data = jsonencode({ "instance-id" = "i-abc" })
      user_data = "#cloud-config\\n"
      network_config = jsonencode({ version = 2 })
    }
  }
  volume {
    source {
      type     = "external"
      urls     = ["https://example.org/a.qcow2", "file:///srv/a.qcow2"]
      checksum = "none"
    }
    pool = "default"
    name = "scratch"
    size = "1G"
    capacity = "2G"
    format = "qcow2"
    readonly = false
  }
}
build { sources = ["source.libvirt.example"] }
'''


def _source(tmp_path: Path, text: str) -> LibvirtSource:
    path = tmp_path / "t.pkr.hcl"
    path.write_text(text)
    template = load(path)
    config = template.builds[0].sources[0].config
    assert isinstance(config, LibvirtSource)
    return config


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(FactoryError) as info:
        _source(tmp_path, text)
    return info.value.render()


def test_the_plugin_s_example_loads_with_typed_blocks(tmp_path: Path) -> None:
    cfg = _source(tmp_path, PLUGIN_EXAMPLE)
    assert cfg.communicator == "ssh" and cfg.ssh_username == "ubuntu" and cfg.ssh_timeout == 600.0
    artifact, seed, scratch = cfg.volumes
    assert artifact.alias == "artifact" and artifact.source and artifact.source.volume == "ubuntu-22.04-base"
    assert seed.source and seed.source.type == "cloud-init" and seed.source.user_data == "#cloud-config\n"
    assert scratch.source and scratch.source.download_urls[1] == "file:///srv/a.qcow2"
    assert scratch.capacity_mib == 2048
    (nic,) = cfg.interfaces
    assert (nic.type, nic.network, nic.model) == ("managed", "default", "virtio")
    assert cfg.displays[0].port == 0


def test_user_networking_is_the_default_interface(tmp_path: Path) -> None:
    cfg = _source(tmp_path, 'source "libvirt" "a" {\n  libvirt_uri = "qemu:///session"\n'
                            '  volume {\n    name = "existing"\n  }\n}\nbuild { sources = ["source.libvirt.a"] }\n')
    assert [n.type for n in cfg.interfaces] == ["user"]


@pytest.mark.parametrize(("body", "line", "expected"), [
    ('communicator {\n    ssh_usernme = "x"\n  }\n  volume {\n    name = "v"\n  }', 3,
     "did you mean 'ssh_username'?"),
    ('volume {\n    source {\n      type = "cloudinit"\n    }\n  }', 3, "did you mean 'cloud-init'?"),
    ('volume {\n    source {\n      type = "external"\n    }\n  }', 3, "a external source needs urls"),
    ('volume {\n    capacty = "1G"\n  }', 3, "did you mean 'capacity'?"),
    ('volume {\n    alias = "a b"\n    name = "v"\n  }', 3, "may hold only letters"),
    ('network_interface {\n    type = "bridge"\n  }\n  volume {\n    name = "v"\n  }', 3, "needs bridge"),
    ('volume {\n    name = "a"\n  }\n  volume {\n    name = "b"\n  }', 3, "none has alias 'artifact'"),
    ('network_address_source = "dhcp"\n  volume {\n    name = "a"\n  }', 3, "allowed: agent, lease, arp"),
])
def test_bad_blocks_name_the_line_and_hint(tmp_path: Path, body: str, line: int, expected: str) -> None:
    text = f'source "libvirt" "a" {{\n  libvirt_uri = "qemu:///system"\n  {body}\n}}\n' \
           'build { sources = ["source.libvirt.a"] }\n'
    rendered = _error(tmp_path, text)
    assert expected in rendered and f"t.pkr.hcl:{line}:" in rendered, rendered


def test_a_source_without_volumes_is_refused(tmp_path: Path) -> None:
    rendered = _error(tmp_path, 'source "libvirt" "a" {\n  libvirt_uri = "qemu:///system"\n}\n'
                                'build { sources = ["source.libvirt.a"] }\n')
    assert 'missing required option "volume"' in rendered and "t.pkr.hcl:1:" in rendered
