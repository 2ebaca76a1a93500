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
