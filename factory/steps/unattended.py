"""`iso = "<catalog name>"`: factory makes the unattended install itself, so no boot_command is needed.

`install_method = "media"` remasters the ISO with the rendered config and boot arguments (H2b's remaster,
cached); `"direct-kernel"` boots the ISO's kernel and initrd (extracted with pycdlib) with arguments that point
the installer at the config served by the build's HTTP server.
"""

from __future__ import annotations

from collections.abc import Mapping
from secrets import token_urlsafe
from typing import Any

from factory import events
from factory.build import Step
from factory.errors import FactoryError, FactoryErrors
from factory.machine.driver import DirectBoot
from factory.steps.context import BuildContext


def _vars(ctx: BuildContext) -> Any:
    """The install's variables: preseed_vars plus the build's user, password or key, and power-off at the end."""
    from factory.media.preseed import from_template

    pairs: list[str] = []
    given = _given(ctx)
    if "username" not in given and ctx.s.ssh_username:
        pairs.append(f"username={ctx.s.ssh_username}")
    if not given & {"password", "password_hash"}:
        # Installers insist on a password; with none given the account gets an unguessable one (never shown,
        # stored only as its hash on the media) and is reached with the build's key.
        pairs.append(f"password={ctx.s.ssh_password or token_urlsafe(24)}")
    if ctx.keypair is not None:
        pairs.append(f"ssh_authorized_keys={ctx.keypair.public_openssh}")
    # The install phase ends when the installer powers off (a reboot ends the VM too: -no-reboot).
    pairs.append("poweroff=true")
    try:
        return from_template(_preseed_vars(ctx), pairs)
    except FactoryError as exc:
        raise _in_source(ctx, exc) from None


def _preseed_vars(ctx: BuildContext) -> dict[str, str]:
    return dict(ctx.s.preseed_vars)


def _given(ctx: BuildContext) -> set[str]:
    return {k.strip().replace("-", "_") for k in _preseed_vars(ctx)}


def per_build(ctx: BuildContext) -> bool:
    """Whether the config holds what only this build has (its ephemeral key, an unguessable password): media
    made with it can never be used again, so caching them would only fill the cache with ISO-sized files."""
    has_password = bool(_given(ctx) & {"password", "password_hash"}) or bool(ctx.s.ssh_password)
    return ctx.keypair is not None or not has_password


def _in_source(ctx: BuildContext, exc: FactoryError) -> FactoryError:
    def one(err: FactoryError) -> FactoryError:
        return FactoryError(f"source {ctx.source_type}.{ctx.source_name}: {err.message}", hint=err.hint)

    if isinstance(exc, FactoryErrors):
        return FactoryErrors([one(e) for e in exc.errors])
    return one(exc)


def check_vars(ctx: BuildContext) -> None:
    """Check preseed_vars before anything starts (a typo must not cost an ISO download or a VM boot to find)."""
    if ctx.s.iso:
        _vars(ctx)


def direct_kernel_args(family: Any, base: str, volume_id: str) -> str:
    """Installer arguments that fetch the config from base, the build's HTTP server as the guest sees it."""
    from factory.media.catalog import InstallerFamily, dracut_label

    if family is InstallerFamily.SUBIQUITY:
        return f"autoinstall ds=nocloud-net;s={base}nocloud/"  # casper finds the live media by scanning
    if family is InstallerFamily.DEBIAN:
        return f"auto=true priority=critical preseed/url={base}preseed.cfg"  # so does d-i's cdrom-detect
    # Anaconda's initrd is told where its stage2 is by the ISO's boot menu, which a direct boot skips.
    return f"inst.stage2=hd:LABEL={dracut_label(volume_id)} inst.ks={base}ks.cfg"


class Unattended(Step[BuildContext]):
    name, title = "unattended", "Making the unattended install"

    def applies(self, ctx: BuildContext) -> bool:
        return ctx.release is not None

    def options(self, ctx: BuildContext) -> Mapping[str, Any]:
        return {"iso": ctx.s.iso, "method": ctx.s.install_method, "preseed_vars": ctx.s.preseed_vars}

    def inputs(self, ctx: BuildContext) -> Mapping[str, Any]:
        """The rendered config (the ISO itself is pinned by the release, an input of the media step)."""
        if ctx.release is None:
            return {}
        from factory.media.preseed import render

        self._rendered = render(ctx.release.family, _vars(ctx))
        return {"rendered": dict(self._rendered.files)}

    def run(self, ctx: BuildContext) -> None:
        if ctx.release is None:
            return
        from factory.media import iso as remaster
        from factory.media.preseed import render

        release = ctx.release
        assert ctx.media is not None and ctx.workdir is not None
        # The config the stage ID was computed from (its random password must be the one used).
        rendered = getattr(self, "_rendered", None) or render(release.family, _vars(ctx))
        if ctx.s.install_method == "media":
            out = ctx.workdir / "unattended.iso"
            from factory.media.cache import indexed_sha256

            args = release.family.kernel_args(release.volume_id)
            with events.progress(f"remaster {ctx.media.name}", ctx.media.stat().st_size) as bar:
                def step(n: int, _total: int) -> None:
                    bar.advance(n)

                if per_build(ctx):
                    remaster.remaster(ctx.media, out, config=rendered, kernel_args=args,
                                      boot_configs=release.boot_configs, progress=step)
                else:
                    remaster.remaster_cached(ctx.media, release.sha256 or indexed_sha256(ctx.media), out,
                                             config=rendered, kernel_args=args, boot_configs=release.boot_configs,
                                             progress=step)
            ctx.media = out
            ctx.say(f"unattended {release.title} media made ({', '.join(sorted(rendered.files))})")
            return
        kernel, initrd = remaster.extract(ctx.media, [release.kernel, release.initrd], ctx.workdir)
        ctx.unattended_files = dict(rendered.files)
        ctx.direct_boot = DirectBoot(kernel, initrd, "console=ttyS0")  # arguments completed once HTTP runs
        ctx.say(f"booting {release.title}'s kernel directly; config served over HTTP")


def finish_direct_boot(ctx: BuildContext) -> None:
    """Once the HTTP server has its port, put the config URL on the kernel command line."""
    if ctx.direct_boot is None or ctx.release is None or ctx.http is None:
        return
    args = direct_kernel_args(ctx.release.family, f"http://{ctx.http.guest_host}:{ctx.http.port}/",
                              ctx.release.volume_id)
    ctx.direct_boot = DirectBoot(ctx.direct_boot.kernel, ctx.direct_boot.initrd,
                                 f"{args} {ctx.direct_boot.cmdline}".strip())
