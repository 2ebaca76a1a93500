//go:build !linux

package proc

import "syscall"

func setDeathSignal(a *syscall.SysProcAttr) { a.Setpgid = true }
