"""Option groups Packer's builders share (ISO, HTTP, floppy, CD, boot, shutdown, communicator).

Packer defines these once in its plugin SDK (multistep/commonsteps, bootcommand, communicator) and every
builder embeds them; we do the same with frozen dataclass mixins, so `qemu` and `virtualbox-iso` read the same
declarations. Support flags describe the QEMU engine (issue 4): what it acts on and what it only accepts.
"""

# opt() returns a dataclasses.field (factory.options); ruff cannot see that, so RUF009 misfires here.
# ruff: noqa: RUF009

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from factory.options import Support, opt
from factory.schema.types import Duration
from factory.schema.values import (
    DEFAULT_FLOPPY_LABEL,
    MAX_PORT,
    SSH_CIPHERS,
    SSH_KEX,
    BootStep,
    Tunnel,
    boot_steps,
    check_checksum,
    check_floppy_label,
    tunnels,
)

IGNORED = Support.IGNORED


def _local_tunnels(values: Any) -> tuple[Tunnel, ...]:
    return tunnels(values, "ssh_local_tunnels")


def _remote_tunnels(values: Any) -> tuple[Tunnel, ...]:
    return tunnels(values, "ssh_remote_tunnels")


@dataclass(frozen=True)
class IsoOptions:
    """Installation media (Packer's ISOConfig)."""

    iso_url: str | None = opt(None, help="URL or local path of the installer ISO, or of the disk image when "
                              "`disk_image = true`. Fetched through factory's ISO cache (http, https, file, "
                              "plain paths). Only one of `iso_url` and `iso_urls` may be set.")
    iso_urls: list[str] = opt([], help="URLs tried in order until one downloads; all must be the same file "
                              "(same checksum). Only one of `iso_url` and `iso_urls` may be set.")
    iso_checksum: str | None = opt(None, check=check_checksum,
                                   help="Checksum of the ISO or disk image: `sha256:HEX`, `md5:`/`sha1:`/"
                                   "`sha512:` prefixes, bare hex (type guessed from its length), `file:URL-or-path`"
                                   " of a SUMS file, or `none`. Required whenever `iso_url`/`iso_urls` is set.")
    iso_target_path: str | None = opt(None, help="Where the fetched ISO is stored, as in Packer: a path with "
                                      "a file extension is the file itself; one without is a directory that "
                                      "receives `<sha1 of the checksum, or of the URL>.<iso_target_extension>`. "
                                      "A file already there that matches `iso_checksum` is used without "
                                      "downloading. factory links it to its cache copy (no second copy on the "
                                      "same file system).")
    iso_target_extension: str = opt("iso", parse=str.lower,
                                    help="File extension of the stored ISO when `iso_target_path` is a "
                                    "directory (lower-cased).")

    # Packer's ISOConfig refuses a download it cannot verify unless told so explicitly (`iso_checksum = "none"`).
    ISO_REQUIRES: ClassVar[tuple[tuple[str, str, str], ...]] = tuple(
        (url, "iso_checksum", 'set iso_checksum to the image\'s checksum (e.g. "sha256:..." or "file:URL-of-SUMS"),'
                              ' or to "none" to skip the check') for url in ("iso_url", "iso_urls"))

    @property
    def iso_url_list(self) -> list[str]:
        """`iso_url`, or the `iso_urls` to try in order."""
        return [self.iso_url] if self.iso_url else list(self.iso_urls)


@dataclass(frozen=True)
class HttpOptions:
    """The built-in HTTP server that serves preseed/kickstart/user-data to the guest (Packer's HTTPConfig)."""

    http_directory: str | None = opt(None, help="Directory served over HTTP to the guest; its address is "
                                     "`{{ .HTTPIP }}:{{ .HTTPPort }}` in `boot_command`. Conflicts with "
                                     "`http_content`. The server runs only during the build.")
    http_content: dict[str, str] = opt({}, help="Map of URL path (starting with `/`) to file content served "
                                       "over HTTP, e.g. built with `templatefile()`. Conflicts with "
                                       "`http_directory`.")
    http_port_min: int = opt(8000, minimum=1, maximum=MAX_PORT,
                             help="Lowest port the HTTP server may listen on; a free port in "
                             "`http_port_min`..`http_port_max` is chosen per build.")
    http_port_max: int = opt(9000, minimum=1, maximum=MAX_PORT,
                             help="Highest port the HTTP server may listen on (inclusive).")
    http_bind_address: str = opt("127.0.0.1", help="Address the HTTP server binds to. factory defaults to "
                                 "loopback (QEMU user networking reaches it as 10.0.2.2) where Packer binds "
                                 "0.0.0.0 and exposes the preseed/kickstart server to the whole network.")
    http_interface: str | None = opt(None, help="Network interface whose address the guest uses for the HTTP "
                                     "server (Packer's undocumented SDK option, used by builders on bridged "
                                     "networks). Not acted on: under QEMU user networking the guest always "
                                     "reaches the server at `10.0.2.2`.", support=IGNORED)
    http_network_protocol: str = opt("tcp", choices=("tcp", "tcp4", "tcp6", "unix", "unixpacket"),
                                     help="Network protocol of the HTTP server: `tcp` and `tcp4` "
                                     "listen on IPv4 (the guest uses `10.0.2.2`); `tcp6` listens on IPv6 only "
                                     "(`127.0.0.1` becomes `::1`, `0.0.0.0` becomes `::`) and `{{ .HTTPIP }}` "
                                     "is `[fec0::2]`, QEMU user networking's IPv6 address of the host. `unix` "
                                     "and `unixpacket` are refused: a guest cannot reach a host socket file.")


@dataclass(frozen=True)
class FloppyOptions:
    """A floppy image attached at boot (Packer's FloppyConfig); mostly for Windows unattended installs."""

    floppy_files: list[str] = opt([], help="Files (globs allowed) placed at the root of a 1.44 MB FAT12 floppy "
                                  "attached as the first floppy drive; a directory adds every file below it, "
                                  "flat (Packer's rule). A missing path is an error, a glob matching nothing "
                                  "a warning.")
    floppy_dirs: list[str] = opt([], help="Directories (globs allowed) copied onto the floppy with their own "
                                 "name and structure.")
    floppy_content: dict[str, str] = opt({}, help="Map of floppy path to file content; wins over "
                                         "`floppy_files`/`floppy_dirs` for the same path. The image is "
                                         "deterministic (sorted, SOURCE_DATE_EPOCH or 1980-01-01 times).")
    floppy_label: str = opt(DEFAULT_FLOPPY_LABEL, check=check_floppy_label, help="Volume label of the floppy (at "
                            "most 11 characters; `cidata` makes it a cloud-init NoCloud seed).")

    @property
    def wants_floppy(self) -> bool:
        return bool(self.floppy_files or self.floppy_dirs or self.floppy_content)


@dataclass(frozen=True)
class CdOptions:
    """An extra CD built from files at boot time (Packer's CDConfig), e.g. a cloud-init NoCloud seed."""

    cd_files: list[str] = opt([], help="Files or directories (globs allowed) placed on an extra CD attached at "
                              "boot; directories are copied recursively. factory builds the ISO in pure Python "
                              "(no xorriso/mkisofs needed).")
    cd_content: dict[str, str] = opt({}, help="Map of CD path to file content, e.g. `\"user-data\" = "
                                     "templatefile(...)`; wins over `cd_files` for the same path.")
    cd_label: str | None = opt(None, help="Volume label of the extra CD; use `cidata` for a cloud-init NoCloud "
                               "seed.")


@dataclass(frozen=True)
class BootOptions:
    """Typing keys into the booting machine (Packer's BootConfig)."""

    boot_command: list[str] = opt([], help="Keys typed after `boot_wait`, in Packer's syntax: text, `<enter>`, "
                                  "`<esc>`, `<tab>`, `<f1>`..`<f12>`, `<waitN>` (e.g. `<wait5>`, `<wait1m30s>`), "
                                  "`<leftCtrlOn>c<leftCtrlOff>`, and `{{ .HTTPIP }}`, `{{ .HTTPPort }}`, "
                                  "`{{ .Name }}`, `{{ .SSHPublicKey | urlquery }}`. Not needed when factory "
                                  "makes the unattended media itself (`iso = ...`).")
    boot_steps: tuple[BootStep, ...] = opt([], written=list[list[str]], parse=boot_steps,
                                           help="`[keys, description]` pairs typed in order, each in "
                                      "`boot_command` syntax; each step is announced with its description "
                                      "before it is typed, and is one key group for `boot_keygroup_interval`. "
                                      "With `-debug` on a terminal factory waits for Enter after each step, as "
                                      "Packer does. Mutually exclusive with `boot_command`.")
    boot_wait: Duration = opt("10s", help="Duration to wait after starting the VM before typing `boot_command`; a "
                         "negative value means no wait.")
    boot_key_interval: Duration = opt("100ms", minimum=0, help="Duration between two typed keys.")
    # Packer leaves this default to each builder; its QEMU builder types over VNC with no pause between groups.
    boot_keygroup_interval: Duration = opt("0s", minimum=0,
                                           help="Duration to wait between two key groups: the elements of "
                                           "`boot_command`, or the steps of `boot_steps` (QEMU takes keys one by "
                                           "one, paced by `boot_key_interval`).")


@dataclass(frozen=True)
class ShutdownOptions:
    """Stopping the machine after provisioning (Packer's ShutdownConfig)."""

    shutdown_command: str | None = opt(None, help="Command run over SSH to shut the guest down after "
                                       "provisioning. When unset (or when it fails) factory asks for an ACPI "
                                       "power-down through QMP, then stops the VM.")
    shutdown_timeout: Duration = opt("5m", minimum=0, help="Duration to wait for the guest to power off after "
                                "`shutdown_command`; past it the build fails.")


# Names, types and defaults from Packer's communicator/config.go; factory's SSH is paramiko (factory.comm).
@dataclass(frozen=True)
class CommunicatorOptions:
    """How factory talks to the guest (Packer's communicator Config, SSH and WinRM structs)."""

    communicator: str = opt("ssh", choices=("ssh", "winrm", "none"),
                            help="`ssh` (default) or `none`. `winrm` validates, but `factory build` "
                            "refuses it before any VM starts: factory has no WinRM communicator.")
    pause_before_connecting: Duration = opt("0s", minimum=0,
                                            help="Duration to wait after the first successful connection "
                                       "before connecting again and provisioning (for guests that restart "
                                       "sshd late in their boot).")
    host_port_min: int = opt(2222, minimum=1, maximum=MAX_PORT,
                             help="Lowest host port forwarded to the guest's SSH port; a free port in "
                             "range is taken under a cross-process lock, so parallel builds never collide, "
                             "and QEMU binds it through its monitor once running (a port another program "
                             "took meanwhile is skipped, never raced).")
    host_port_max: int = opt(4444, minimum=1, maximum=MAX_PORT,
                             help="Highest host port forwarded to the guest's SSH port (inclusive).")
    skip_nat_mapping: bool = opt(False, help="Do not forward a host port; connect to `ssh_host:ssh_port` "
                                 "directly (e.g. a guest on a bridge or with its own `qemuargs` netdev). "
                                 "Needs `ssh_host`.")
    ssh_username: str | None = opt(None, help="User to log in as over SSH. Required with `communicator = "
                                   "\"ssh\"` unless factory creates the user itself (`iso = ...`).")
    ssh_password: str | None = opt(None, help="Password for SSH login. Masked in every log and output.",
                                   sensitive=True)
    ssh_private_key_file: str | None = opt(None, help="Private key file for SSH login (`~` expanded). With "
                                           "neither this nor `ssh_password`, factory generates an ephemeral "
                                           "ed25519 key pair per build and injects its public key.")
    ssh_timeout: Duration = opt("5m", minimum=0,
                                help="Duration to wait for SSH to become available; factory scales it for "
                           "TCG and names what it saw on timeout (refused, banner, auth failure ...).")
    ssh_handshake_attempts: int = opt(10, minimum=1,
                                      help="SSH handshakes to attempt once the port accepts connections.")
    ssh_host: str | None = opt(None, help="Address to SSH to. Default `127.0.0.1`, where QEMU forwards a "
                               "host port (`host_port_min`..`host_port_max`) to the guest's `ssh_port`; with "
                               "`skip_nat_mapping` factory connects to `ssh_host:ssh_port` itself.")
    ssh_port: int = opt(22, minimum=1, maximum=MAX_PORT,
                        help="The guest's SSH port: the target of QEMU's port forward, or the port "
                        "connected to with `skip_nat_mapping`.")
    ssh_pty: bool = opt(False, help="Run commands on a pseudo-terminal (xterm, 80x40, as Packer): stderr then "
                        "arrives mixed into stdout. For guests whose sudo insists on a tty (`requiretty`).")
    ssh_agent_auth: bool = opt(False, help="Also log in with the keys of the local SSH agent (`SSH_AUTH_SOCK` "
                               "must be set). No ephemeral key pair is made then.")
    ssh_disable_agent_forwarding: bool = opt(False, help="Do not forward the local SSH agent to commands in "
                                             "the guest. As in Packer, the agent at `SSH_AUTH_SOCK` (if any) is "
                                             "forwarded by default: set this when the guest is not trusted "
                                             "with your keys.")
    ssh_certificate_file: str | None = opt(None, help="OpenSSH user certificate (`*-cert.pub`, made with "
                                           "`ssh-keygen -s CA ...`) for `ssh_private_key_file`, for sshds that "
                                           "trust a CA (`TrustedUserCAKeys`). `~` is expanded.")
    ssh_ciphers: list[str] = opt([], check=SSH_CIPHERS,
                                 help="Ciphers offered, in order of preference (default: paramiko's). "
                                 "Names SSH has but factory lacks (`chacha20-poly1305@openssh.com`, `arcfour*`) "
                                 "are left out; an unknown name is an error listing the supported ones.")
    ssh_key_exchange_algorithms: list[str] = opt([], check=SSH_KEX, help="Key exchange algorithms offered, in order of "
                                                 "preference (e.g. `curve25519-sha256@libssh.org`, "
                                                 "`ecdh-sha2-nistp256`); as for `ssh_ciphers`, SHA-1 groups "
                                                 "are left out and unknown names are errors.")
    ssh_clear_authorized_keys: bool = opt(False, help="After provisioning, remove the ephemeral public key "
                                          "from `~/.ssh/authorized_keys` of `ssh_username` and (with "
                                          "passwordless sudo) of root, then check it is gone: the image does "
                                          "not keep a key factory made. Only with the ephemeral key pair.")
    ssh_file_transfer_method: str = opt("sftp", choices=("scp", "sftp"),
                                        help="`sftp` (factory's default) or `scp` (Packer's default; "
                                        "the SCP protocol through `scp -t`/`scp -f` in the guest, for sshds "
                                        "without an SFTP subsystem).")
    ssh_keep_alive_interval: Duration = opt("5s", help="Duration between SSH keep-alive messages; during a "
                                       "silent command factory also checks that the guest still answers at "
                                       "this pace. A negative value (`-1s`) disables both.")
    ssh_read_write_timeout: Duration | None = opt(None, minimum=0, help="Duration the guest may stay silent (not even "
                                             "answering keep-alives) before the connection counts as dead and "
                                             "the command fails (or reconnects with `expect_disconnect`). "
                                             "Default 30s in factory (Packer: disabled).")
    ssh_remote_tunnels: tuple[Tunnel, ...] = opt([], written=list[str], parse=_remote_tunnels,
                                                 help="`PORT:HOST:HOSTPORT` tunnels like `ssh -R`: the guest's "
                                        "sshd listens on `localhost:PORT` and connections reach `HOST:HOSTPORT` "
                                        "as seen from the build host.")
    ssh_local_tunnels: tuple[Tunnel, ...] = opt([], written=list[str], parse=_local_tunnels,
                                                help="`PORT:HOST:HOSTPORT` tunnels like `ssh -L`: factory listens "
                                       "on `127.0.0.1:PORT` on the build host and connections reach "
                                       "`HOST:HOSTPORT` as seen from the guest.")
    ssh_bastion_host: str | None = opt(None, help="Jump host: factory logs in there and reaches the guest's "
                                       "sshd through it (a `direct-tcpip` channel, like `ssh -J`), so the "
                                       "bastion connects to `ssh_host`: use it with `skip_nat_mapping` and the "
                                       "guest's address as the bastion sees it. Excludes `ssh_proxy_host`.")
    ssh_bastion_port: int = opt(22, minimum=1, maximum=MAX_PORT, help="SSH port of the bastion host.")
    ssh_bastion_agent_auth: bool = opt(False, help="Log in to the bastion with the local SSH agent's keys.")
    ssh_bastion_username: str | None = opt(None, help="User on the bastion host (default: `ssh_username`).")
    ssh_bastion_password: str | None = opt(None, help="Password on the bastion host (also answers "
                                           "keyboard-interactive prompts).", sensitive=True)
    ssh_bastion_interactive: bool = opt(False, help="Answer the bastion's keyboard-interactive prompts (e.g. "
                                        "a one-time code) at the terminal.")
    ssh_bastion_private_key_file: str | None = opt(None, help="Private key for the bastion (default: "
                                                   "`ssh_private_key_file`).")
    ssh_bastion_certificate_file: str | None = opt(None, help="OpenSSH user certificate for "
                                                   "`ssh_bastion_private_key_file`.")
    ssh_proxy_host: str | None = opt(None, help="SOCKS5 proxy to reach the guest's sshd through: the proxy "
                                     "resolves and connects to `ssh_host` (with `skip_nat_mapping`, the guest's "
                                     "address as the proxy sees it). Excludes `ssh_bastion_host`.")
    ssh_proxy_port: int = opt(1080, minimum=1, maximum=MAX_PORT, help="Port of the SOCKS5 proxy.")
    ssh_proxy_username: str | None = opt(None, help="User for the SOCKS5 proxy (RFC 1929).")
    ssh_proxy_password: str | None = opt(None, help="Password for the SOCKS5 proxy.", sensitive=True)
    temporary_key_pair_type: str = opt("ed25519", choices=("ed25519", "ecdsa", "rsa", "dsa"),
                                       help="Type of the ephemeral key pair: `ed25519` (factory's "
                                       "default), `ecdsa` or `rsa` (Packer's default). `dsa` is refused: "
                                       "OpenSSH no longer accepts DSA keys.")
    temporary_key_pair_bits: int | None = opt(None, help="Size of the ephemeral key: rsa 1024..16384 "
                                              "(default 4096), ecdsa 256, 384 or 521 (default 256); ignored "
                                              "for ed25519.")
    winrm_username: str | None = opt(None, help="WinRM user. `factory build` refuses the "
                                     "winrm communicator before any VM starts (no WinRM in factory).")
    winrm_password: str | None = opt(None, help="WinRM password.", sensitive=True)
    winrm_host: str | None = opt(None, help="Address of the WinRM endpoint.")
    winrm_port: int = opt(5985, minimum=1, maximum=MAX_PORT, help="Port of the WinRM endpoint.")
    winrm_timeout: Duration = opt("30m", minimum=0, help="Duration to wait for WinRM.")
    winrm_use_ssl: bool = opt(False, help="Use HTTPS for WinRM.")
    winrm_insecure: bool = opt(False, help="Skip WinRM certificate checks.")
    winrm_use_ntlm: bool = opt(False, help="NTLMv2 authentication for WinRM.")
    winrm_no_proxy: bool = opt(False, help="Bypass proxies for WinRM.")

    # Packer's deprecated spellings, still decoded by its plugins (communicator/config.go, the qemu builder's
    # comm_config.go): the template layer renames them, with a warning naming file:line, so each option keeps
    # one declaration.
    ALIASES: ClassVar[dict[str, str]] = {"ssh_wait_timeout": "ssh_timeout", "ssh_host_port_min": "host_port_min",
                                         "ssh_host_port_max": "host_port_max",
                                         "ssh_skip_nat_mapping": "skip_nat_mapping",
                                         "ssh_disable_agent": "ssh_disable_agent_forwarding"}

@dataclass(frozen=True)
class SourceOptions(IsoOptions, HttpOptions, FloppyOptions, CdOptions, BootOptions, ShutdownOptions,
                    CommunicatorOptions):
    """Everything Packer's ISO-based builders share; a source adds its own hardware and output options."""
    SOURCE_EXCLUSIVE: ClassVar[tuple[tuple[str, ...], ...]] = (
        ("iso_url", "iso_urls"), ("http_directory", "http_content"), ("boot_command", "boot_steps"))
    # Port ranges (inclusive): the low end may not be above the high end.
    ORDERED: ClassVar[tuple[tuple[str, str], ...]] = (("http_port_min", "http_port_max"),
                                                      ("host_port_min", "host_port_max"))


@dataclass(frozen=True)
class EnvOptions:
    """Environment variables given to scripts, on the guest (shell) or the host (shell-local)."""

    environment_vars: list[str] = opt([], help="`KEY=VALUE` pairs set for the scripts (through `{{.Vars}}`), "
                                      "after PACKER_BUILD_NAME and PACKER_BUILDER_TYPE.")
    env: dict[str, str] = opt({}, help="Map of environment variables set for the scripts; merged with "
                              "`environment_vars`.")
    env_var_format: str | None = opt(None, help="printf-style format of each variable in `{{.Vars}}` "
                                     "(Packer's default `%s='%s' `).")


# Shared by the shell-local provisioner and post-processor (Packer's shell-local/config.go).
@dataclass(frozen=True)
class ShellLocalOptions(EnvOptions):
    """Running commands on the build host."""

    command: str | None = opt(None, help="A single command run on the host. Exactly one of `command`, "
                              "`inline`, `script`, `scripts` is required.")
    inline: list[str] = opt([], help="Commands written to a temporary script (with `inline_shebang`) and run "
                            "on the host.")
    inline_shebang: str = opt("/bin/sh -e", help="Shebang line of the script made from `inline`.")
    script: str | None = opt(None, help="Path of a local script to run on the host.", reads=True)
    scripts: list[str] = opt([], help="Paths of local scripts run in order on the host.", reads=True)
    execute_command: list[str] = opt(["/bin/sh", "-c", "{{.Vars}} {{.Script}}"],
                                     help="argv used to run each script; `{{.Vars}}` expands to the "
                                     "environment assignments and `{{.Script}}` to the script path.")
    only_on: list[str] = opt([], help="Host OS names (`linux`, `darwin`, `windows` ...) on which to run; "
                             "elsewhere the step is skipped. Empty: run everywhere.")
    valid_exit_codes: list[int] = opt([0], help="Exit codes treated as success.")
    use_linux_pathing: bool = opt(False, help="Windows only: translate paths for WSL.", support=IGNORED)
    tempfile_extension: str | None = opt(None, help="Extension of the temporary script file (Windows).",
                                         support=IGNORED)

