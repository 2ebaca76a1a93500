"""Public API of rules_go_vm: run Go tests inside Linux guests.

```starlark
load("@rules_go_vm//rules:defs.bzl", "go_vm_test")

go_vm_test(
    name = "ring_vm_test",
    srcs = ["ring_test.go"],
    embed = [":ring"],
    memory = "512M",
)
```
"""

load("//rules/private:host_test.bzl", _go_host_test = "go_host_test")
load("//rules/private:kernel.bzl", _guest_kernel = "guest_kernel", _kernel_image = "kernel_image")
load("//rules/private:kernel_toolchain.bzl", _kernel_build_toolchain = "kernel_build_toolchain")
load("//rules/private:layers.bzl", _guest_base_layer = "guest_base_layer")
load(
    "//rules/private:providers.bzl",
    _GuestLayerInfo = "GuestLayerInfo",
    _GuestTemplateInfo = "GuestTemplateInfo",
    _KernelBuildToolchainInfo = "KernelBuildToolchainInfo",
    _KernelInfo = "KernelInfo",
    _VmToolchainInfo = "VmToolchainInfo",
)
load("//rules/private:template.bzl", _guest_template = "guest_template")
load("//rules/private:toolchain.bzl", _vm_toolchain = "vm_toolchain")
load("//rules/private:vm_test.bzl", _go_vm_test = "go_vm_test")

go_vm_test = _go_vm_test
go_host_test = _go_host_test
kernel_image = _kernel_image
guest_kernel = _guest_kernel
kernel_build_toolchain = _kernel_build_toolchain
guest_base_layer = _guest_base_layer
guest_template = _guest_template
vm_toolchain = _vm_toolchain
KernelInfo = _KernelInfo
KernelBuildToolchainInfo = _KernelBuildToolchainInfo
GuestLayerInfo = _GuestLayerInfo
GuestTemplateInfo = _GuestTemplateInfo
VmToolchainInfo = _VmToolchainInfo
