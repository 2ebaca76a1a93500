"""Providers of rules_go_vm."""

KernelInfo = provider(
    doc = "A guest kernel image built by `kernel_image` or `guest_kernel` (or provided by a user).",
    fields = {
        "arch": "Guest architecture: \"x86_64\" or \"aarch64\".",
        "build_tree": "File: the build's tree (kbuild --tree: objects, generated files, .config) that `guest_kernel` " +
                      "builds on, or None (optional: a KernelInfo made without it has none).",
        "config": "File: the kernel's final .config, or None.",
        "image": "File: the image QEMU boots (x86_64: vmlinux with a PVH entry; aarch64: Image).",
        "manifest": "File: kbuild's manifest.json (release, cache key, options), or None.",
        "source": "File: the kernel source tarball it was built from, or None (optional; `guest_kernel` needs it " +
                  "with build_tree).",
    },
)

KernelBuildToolchainInfo = provider(
    doc = """What a `KernelBuild` action (kbuild, for `kernel_image` and `guest_kernel`) runs: the programs of the
Linux kernel build on the execution platform, by absolute path, and the environment the action gets instead of
Bazel's default shell environment. Made by `kernel_build_toolchain`.""",
    fields = {
        "bc": "string: absolute path of `bc` (computes kernel/time's timeconst.h; run by name from PATH).",
        "bison": "string: absolute path of `bison` (generates Kconfig's parser; run by name from PATH).",
        "cc": "dict: guest arch (\"x86_64\", \"aarch64\") -> absolute path of the C compiler for kernels of that " +
              "arch, whose file name ends in `gcc` (its prefix is `CROSS_COMPILE`; binutils are " +
              "`$(CROSS_COMPILE)ld`, ... in the same directory).",
        "env": "dict: the action's whole environment: `PATH` made of the tools' directories (compiler first), " +
               "`LC_ALL=C`. Not the host's: no `use_default_shell_env`.",
        "flex": "string: absolute path of `flex` (generates Kconfig's lexer; run by name from PATH).",
        "host_cc": "string: absolute path of the build host's `gcc` (HOSTCC: Kconfig and the build's host programs; " +
                   "run by name from PATH).",
        "kbuild_args": "list of strings: kbuild's tool flags for every arch except `--cc` " +
                       "(`--make=/usr/bin/make`, ...).",
        "make": "string: absolute path of GNU `make` (run by path).",
        "patch": "string: absolute path of GNU `patch` (applies the source patches; run by path).",
        "perl": "string: absolute path of `perl` (the build's scripts; run by name from PATH).",
        "tar": "string: absolute path of GNU `tar` (extracts the source tarball; run by path).",
        "xz": "string: absolute path of `xz` (tar runs it for a .tar.xz; run by name from PATH).",
    },
)

GuestLayerInfo = provider(
    doc = "An initramfs layer (newc cpio) for a guest of one architecture.",
    fields = {
        "arch": "Guest architecture: \"x86_64\" or \"aarch64\".",
        "archive": "File: the cpio archive.",
    },
)

VmToolchainInfo = provider(
    doc = "What a guest of one architecture needs by default: its kernel and base initramfs layer.",
    fields = {
        "arch": "Guest architecture: \"x86_64\" or \"aarch64\".",
        "base_layer": "GuestLayerInfo of the base layer (guest init and static files).",
        "kernel": "KernelInfo of the default kernel.",
        "template": "GuestTemplateInfo of the snapshot-start template of the default VM shape, or None.",
    },
)

GuestTemplateInfo = provider(
    doc = "A snapshot-start template made by `guest_template`: a guest booted to where its init waits for its test, saved.",
    fields = {
        "arch": "Guest architecture: \"x86_64\" or \"aarch64\".",
        "directory": "File (a directory): the template, as runner/cmd/mktemplate wrote it.",
        "vm": "dict: the VM shape fields the template was made for (the launch file's text form, without start and tcg_timeout_scale).",
    },
)

VmTestInfo = provider(
    doc = "What a go_vm_test boots, for its `.debug` target: the launcher's runner and VM spec.",
    fields = {
        "runner": "File: the vmtest launcher binary (exec configuration).",
        "spec": "File: the launch file (VM spec and what to boot) the launcher reads (see package vmspec, vmspec.Launch).",
    },
)

ARCHES = ["x86_64", "aarch64"]
