// Command mklayer writes the base initramfs layer of a guest (the guest init
// as /init, /dev/console and the mount-point directories), the same layer
// `invm` builds and caches, for the `guest_base_layer` Bazel rule.
//
//	mklayer base -init INIT [-busybox BUSYBOX] -o OUT
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/rules-go-vm/rules_go_vm/runner"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mklayer:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 || args[0] != "base" {
		return errors.New("usage: mklayer base -init INIT [-busybox BUSYBOX] -o OUT")
	}
	fs := flag.NewFlagSet("mklayer base", flag.ContinueOnError)
	initBin := fs.String("init", "", "the static guest init binary")
	busybox := fs.String("busybox", "", "a static busybox of the guest arch: /bin/busybox, with runner.GuestApplets linked to it")
	out := fs.String("o", "", "output archive")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *initBin == "" || *out == "" || fs.NArg() != 0 {
		return errors.New("usage: mklayer base -init INIT [-busybox BUSYBOX] -o OUT")
	}
	l, err := runner.NewBaseLayer(*initBin, *busybox)
	if err != nil {
		return err
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	if _, err := l.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
