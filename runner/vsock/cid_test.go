package vsock

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
)

// fakeKernel is the host-wide CID table of a fake vhost-vsock.
type fakeKernel struct {
	mu    sync.Mutex
	held  map[uint64]*fakeDev
	fail  error // returned by SetGuestCID when set (not EADDRINUSE)
	calls int
}

type fakeDev struct {
	k      *fakeKernel
	cid    uint64
	closed bool
}

func (k *fakeKernel) open() (VhostDevice, error) { return &fakeDev{k: k}, nil }

func (d *fakeDev) SetGuestCID(cid uint64) error {
	d.k.mu.Lock()
	defer d.k.mu.Unlock()
	d.k.calls++
	if d.k.fail != nil {
		return d.k.fail
	}
	if o := d.k.held[cid]; o != nil && o != d {
		return fmt.Errorf("%w (EADDRINUSE)", ErrCIDInUse)
	}
	if d.cid != 0 {
		delete(d.k.held, d.cid)
	}
	d.k.held[cid], d.cid = d, cid
	return nil
}

func (d *fakeDev) File() *os.File { return nil }

func (d *fakeDev) Close() error {
	d.k.mu.Lock()
	defer d.k.mu.Unlock()
	if d.cid != 0 && d.k.held[d.cid] == d {
		delete(d.k.held, d.cid)
	}
	d.closed = true
	return nil
}

func TestAllocatorRetriesOnConflict(t *testing.T) {
	k := &fakeKernel{held: map[uint64]*fakeDev{}}
	// Another VM holds 3..6; our random start is 0 (CID 3).
	for c := uint64(3); c <= 6; c++ {
		k.held[c] = &fakeDev{k: k, cid: c}
	}
	a := Allocator{Open: k.open, First: 3, Last: 100, Rand: func(uint64) uint64 { return 0 }}
	dev, cid, err := a.Reserve()
	if err != nil {
		t.Fatal(err)
	}
	if cid != 7 || k.calls != 5 {
		t.Errorf("cid %d after %d probes, want 7 after 5", cid, k.calls)
	}
	dev.Close()
	if k.held[7] != nil {
		t.Errorf("CID 7 still held after Close")
	}
}

func TestAllocatorParallelNoCollision(t *testing.T) {
	k := &fakeKernel{held: map[uint64]*fakeDev{}}
	// A tiny range and a start that always collides: every reservation
	// must still end on its own CID.
	a := Allocator{Open: k.open, First: 3, Last: 34, Tries: 32, Rand: func(uint64) uint64 { return 0 }}
	const n = 32
	var wg sync.WaitGroup
	cids := make([]uint32, n)
	devs := make([]VhostDevice, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			devs[i], cids[i], errs[i] = a.Reserve()
		}()
	}
	wg.Wait()
	seen := map[uint32]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("reserve %d: %v", i, errs[i])
		}
		if seen[cids[i]] {
			t.Fatalf("CID %d handed out twice", cids[i])
		}
		seen[cids[i]] = true
	}
	// The range is full now.
	if _, _, err := a.Reserve(); !errors.Is(err, ErrNoCID) {
		t.Errorf("full range: %v, want ErrNoCID", err)
	}
	for _, d := range devs {
		d.Close()
	}
	if len(k.held) != 0 {
		t.Errorf("%d CIDs still held", len(k.held))
	}
}

func TestAllocatorErrors(t *testing.T) {
	boom := errors.New("EPERM")
	for _, tc := range []struct {
		name string
		a    func(k *fakeKernel) Allocator
	}{
		{"open fails", func(k *fakeKernel) Allocator {
			return Allocator{Open: func() (VhostDevice, error) { return nil, boom }}
		}},
		{"ioctl fails", func(k *fakeKernel) Allocator { k.fail = boom; return Allocator{Open: k.open} }},
		{"bad range", func(k *fakeKernel) Allocator { return Allocator{Open: k.open, First: 10, Last: 5} }},
		{"reserved CIDs", func(k *fakeKernel) Allocator { return Allocator{Open: k.open, First: 2, Last: 5} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := &fakeKernel{held: map[uint64]*fakeDev{}}
			if _, _, err := tc.a(k).Reserve(); !errors.Is(err, ErrNoCID) {
				t.Fatalf("err %v, want ErrNoCID", err)
			}
		})
	}
}

func TestChoose(t *testing.T) {
	ok := func(string) error { return nil }
	missing := func(string) error { return errors.New("no such device") }
	daemon := func() (string, error) { return "/bin/vhost-device-vsock", nil }
	noDaemon := func() (string, error) { return "", ErrNoDaemon }
	for _, tc := range []struct {
		name   string
		req    Transport
		open   func(string) error
		find   func() (string, error)
		want   Transport
		errIs  error
		reason string
	}{
		{"auto kvm host", Auto, ok, daemon, VhostVsock, nil, "is usable"},
		{"auto no device", Auto, missing, daemon, VhostUserVsock, nil, "not usable"},
		{"auto nothing", Auto, missing, noDaemon, VirtioSerial, nil, "virtio-serial fallback"},
		{"forced vhost missing", VhostVsock, missing, daemon, "", ErrTransport, ""},
		{"forced user", VhostUserVsock, ok, daemon, VhostUserVsock, nil, "requested"},
		{"forced user no daemon", VhostUserVsock, ok, noDaemon, "", ErrNoDaemon, ""},
		{"forced serial", VirtioSerial, ok, daemon, VirtioSerial, nil, "requested"},
		{"unknown", "tcp", ok, daemon, "", ErrTransport, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Choose(tc.req, Probe{OpenDevice: tc.open, FindDaemon: tc.find})
			if tc.errIs != nil {
				if !errors.Is(err, tc.errIs) {
					t.Fatalf("err %v, want %v", err, tc.errIs)
				}
				return
			}
			if err != nil || c.Transport != tc.want || !contains(c.Reason, tc.reason) {
				t.Fatalf("got %+v, %v; want %s (%q)", c, err, tc.want, tc.reason)
			}
		})
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestParseTransport(t *testing.T) {
	for _, s := range []string{"", "auto", "vhost-vsock", "vhost-user-vsock", "virtio-serial"} {
		if _, err := ParseTransport(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	if _, err := ParseTransport("vsock"); !errors.Is(err, ErrTransport) {
		t.Errorf("vsock: %v", err)
	}
}
