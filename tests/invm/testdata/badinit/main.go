// Command badinit is a fake guest PID 1 that breaks the protocol on
// purpose, to check that the host never takes a broken session for a pass.
// The mode comes from the kernel command line (BADINIT_MODE=..., which the
// kernel hands to init as an environment variable):
//
//	garbled    Hello, then a Verdict frame whose JSON claims a pass but is cut
//	crc        Hello, then a passing Verdict with a flipped payload byte
//	duplicate  Hello, then two passing Verdicts
//	none       Hello, then nothing (power off)
//	oldversion a version-1 Hello, then a passing Verdict
package main

import (
	"bytes"
	"fmt"
	"os"
	"time"

	"github.com/mdlayher/vsock"
	"golang.org/x/sys/unix"

	"github.com/rules-go-vm/rules_go_vm/protocol"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "badinit:", err)
	}
	unix.Sync()
	time.Sleep(500 * time.Millisecond)
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

func run() error {
	var conn *vsock.Conn
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if conn, err = vsock.Dial(protocol.HostCID, protocol.DefaultVsockPort, nil); err == nil {
			break
		}
	}
	if err != nil {
		return err
	}
	defer conn.Close()
	w := protocol.NewWriter(conn)
	mode := os.Getenv("BADINIT_MODE")
	version := protocol.Version
	if mode == "oldversion" {
		version = 1
	}
	hello := protocol.EncodeHello(protocol.Hello{Version: version, Role: protocol.RoleControl, Agent: "badinit"})
	if err := w.WriteFrame(protocol.FrameHello, hello); err != nil {
		return err
	}
	pass, _ := protocol.EncodeVerdict(protocol.Verdict{Pass: true})
	fmt.Fprintln(os.Stderr, "badinit: mode", mode)
	switch mode {
	case "garbled":
		err = w.WriteFrame(protocol.FrameVerdict, pass[:len(pass)-3])
	case "crc":
		f, _ := protocol.AppendFrame(nil, protocol.FrameVerdict, pass)
		f[len(f)-2] ^= 0x20
		_, err = conn.Write(f)
	case "duplicate":
		err = w.Verdict(protocol.Verdict{Pass: true})
		if err == nil {
			err = w.Verdict(protocol.Verdict{Pass: true})
		}
	case "none":
	case "oldversion":
		err = w.Verdict(protocol.Verdict{Pass: true})
	default:
		return fmt.Errorf("unknown BADINIT_MODE %q", mode)
	}
	if err != nil {
		return err
	}
	// Wait for the host to answer or hang up, like a real init.
	buf := make([]byte, 64)
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, _ := conn.Read(buf)
	fmt.Fprintf(os.Stderr, "badinit: host answered %q\n", bytes.TrimSpace(buf[:n]))
	return nil
}
