package guestinit

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/rules-go-vm/rules_go_vm/protocol"
)

// serveDebug accepts debug connections on ln until it is closed: each one
// runs one command (protocol.DebugRequest) for debugging a test in the VM
// it ran in. The guest has no shell of its own; the command is any guest
// binary (the test itself, or a static busybox the host added).
func (s *session) serveDebug(ln Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go s.debugConn(c)
	}
}

func (s *session) debugConn(c io.ReadWriteCloser) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 4096)
	line, err := readLine(br, protocol.MaxDebugRequest)
	if err != nil {
		fmt.Fprintf(c, "[invm: error: %v]\r\n", err)
		return
	}
	req, err := protocol.DecodeDebugRequest(line)
	if err != nil {
		fmt.Fprintf(c, "[invm: error: %v]\r\n", err)
		return
	}
	s.diagf("debug: running %s (tty %v)", strings.Join(req.Argv, " "), req.TTY)
	status, err := runDebug(req, br, c)
	if err != nil {
		fmt.Fprintf(c, "\r\n[invm: error: %v]\r\n", err)
		return
	}
	fmt.Fprintf(c, "\r\n[invm: %s]\r\n", status)
}

// readLine reads one '\n'-terminated line of at most max bytes.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		part, isPrefix, err := br.ReadLine()
		if err != nil {
			return nil, err
		}
		line = append(line, part...)
		if len(line) > max {
			return nil, fmt.Errorf("request longer than %d bytes", max)
		}
		if !isPrefix {
			return line, nil
		}
	}
}

// runDebug runs req with in as its input and out as its output; it returns
// the exit status. The command is killed when the host goes away.
func runDebug(req protocol.DebugRequest, in io.Reader, out io.Writer) (string, error) {
	cmd := exec.Command(req.Argv[0], req.Argv[1:]...)
	cmd.Env = TestEnv([]string{"TERM=linux", "PS1=invm# "})
	cmd.Dir = "/"
	if req.TTY {
		master, slave, err := openPTY(req.Rows, req.Cols)
		if err != nil {
			return "", err
		}
		defer master.Close()
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		if err := cmd.Start(); err != nil {
			slave.Close()
			return "", err
		}
		slave.Close()
		go func() { _, _ = io.Copy(master, in); _ = cmd.Process.Kill() }() // host gone: end the command
		_, _ = io.Copy(out, master)                                        // EIO once the command and its children closed the pty
	} else {
		cmd.Stdout, cmd.Stderr = out, out
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return "", err
		}
		if err := cmd.Start(); err != nil {
			return "", err
		}
		go func() { _, _ = io.Copy(stdin, in); stdin.Close() }()
	}
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ProcessState.String(), nil
	}
	if err != nil {
		return "", err
	}
	return "exit status 0", nil
}

// openPTY opens a new pty pair on the devpts instance at /dev/pts.
func openPTY(rows, cols uint16) (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/pts/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		if m, err = os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0); err != nil {
			return nil, nil, fmt.Errorf("open ptmx (is devpts mounted?): %w", err)
		}
	}
	unlock := 0
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, m.Fd(), unix.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		m.Close()
		return nil, nil, fmt.Errorf("unlockpt: %w", e)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("ptsname: %w", err)
	}
	sl, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	if rows > 0 && cols > 0 {
		_ = unix.IoctlSetWinsize(int(sl.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
	}
	return m, sl, nil
}
