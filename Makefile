# factory — set-up, tests and benchmarks. `make bootstrap` on a fresh Debian/Ubuntu machine installs every
# system package and the Python package, then runs the main job; `make test` runs the whole test suite.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
JOBS   ?= 2

# Host tools factory drives (qemu, qemu-img, OVMF, libvirt) and the ones its tests use to make real guests and
# installer-shaped ISOs (debootstrap, grub, xorriso, mtools, the d-i netboot kernel); xmllint for virt-xml-validate;
# Debian's packer (1.6.6) for the side-by-side benchmark; postgresql for the build queue (`factory worker`) and its
# tests.
APT_PACKAGES := python3-venv python3-dev gcc pkg-config git \
	qemu-system-x86 qemu-utils qemu-block-extra ovmf \
	libvirt-daemon-system libvirt-clients libvirt-dev libxml2-utils \
	debootstrap e2fsprogs dosfstools mtools gdisk systemd-boot-efi busybox-static \
	xorriso grub-pc-bin grub-efi-amd64-bin grub-common debian-installer-12-netboot-amd64 isolinux syslinux-common \
	debconf cpio zstd xz-utils openssh-client openssh-server openssl ca-certificates gpg gpgv swtpm swtpm-tools microsocks \
	packer postgresql sshpass

.PHONY: bootstrap deps apt venv npm demo test test-fast lint bench clean

bootstrap: deps demo

deps: apt venv npm

apt:
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES)

venv:
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,cloud]'
	# pip writes no bytecode for an editable install, and where PYTHONDONTWRITEBYTECODE is set (containers, CI
	# images) Python would compile factory's ~200 modules on every command: ~0.1 s of each `factory` run.
	$(PY) -m compileall -q factory

# Azurite (Azure Blob Storage on 127.0.0.1) for the azure-import tests, pinned in package.json.
npm:
	command -v npm >/dev/null || $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm
	npm install --no-audit --no-fund --loglevel=error

# The main job: what a new user runs first. Builds a Debian 12 cloud-like guest image from Debian's packages
# (tools/mkguest.py, cached by recipe hash), then `factory build`s examples/debian-cloud on it: boot under QEMU
# (KVM if it really works, else TCG), cloud-init seed, SSH provisioning, shutdown, compacted qcow2, manifest and
# checksum in output-debian-cloud/.
DEMO_GUEST := build/guest/debian-12-guest.qcow2

demo:
	$(VENV)/bin/factory iso-list
	$(PY) tools/mkguest.py --cache --output build/guest
	$(VENV)/bin/factory build -force -var guest_image=$(DEMO_GUEST) examples/debian-cloud

lint:
	$(VENV)/bin/ruff check factory tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: lint
	$(VENV)/bin/pytest -n $(JOBS) --durations=15

test-fast: lint
	$(VENV)/bin/pytest -n $(JOBS) -m 'not vm'

bench:
	for b in bench/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) node_modules build dist .pytest_cache .mypy_cache .ruff_cache
