//go:build bazel

// Package netns is the example of a guest test whose kernel needs options
// the default kernel lacks: its go_vm_test boots a guest_kernel (BUILD.bazel)
// that adds CONFIG_NET_SCH_NETEM to rules_go_vm's default kernel, on every
// guest arch. The test makes a veth pair, moves one end into a new network
// namespace, addresses both, pings across, checks what each namespace sees
// and puts a netem qdisc on the link.
//
// Only under Bazel (the bazel build tag): `go test -exec invm` boots the
// default kernel, which has no netem. The //invm:kernel directive is how
// Gazelle (gazelle_invm) keeps `kernel` on the go_vm_test.
package netns

//invm:kernel //tests/netns:netns_kernel

import (
	"errors"
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/rules-go-vm/rules_go_vm/invm"
)

const (
	hostEnd, nsEnd   = "veth-host", "veth-ns"
	hostAddr, nsAddr = "10.200.0.1", "10.200.0.2"
	// udpTimeout bounds one UDP exchange across the pair (TCG guests are slow).
	udpTimeout = 10 * time.Second
)

func TestVethAcrossNamespaces(t *testing.T) {
	invm.Require(t)
	// Namespace switches are per thread: keep this goroutine on one.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	root, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	ns, err := netns.New() // creates it and switches this thread into it
	if err != nil {
		t.Fatalf("new network namespace (CONFIG_NET_NS): %v", err)
	}
	defer ns.Close()
	if err := netns.Set(root); err != nil {
		t.Fatal(err)
	}

	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hostEnd}, PeerName: nsEnd}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatalf("veth pair (CONFIG_VETH): %v", err)
	}
	peer, err := netlink.LinkByName(nsEnd)
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetNsFd(peer, int(ns)); err != nil {
		t.Fatalf("moving %s into the namespace: %v", nsEnd, err)
	}
	host, err := netlink.LinkByName(hostEnd)
	if err != nil {
		t.Fatal(err)
	}
	addAddr(t, nil, host, hostAddr)

	// Route netlink only: the default families include XFRM, which the
	// guest kernel does not have.
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	inner, err := h.LinkByName(nsEnd)
	if err != nil {
		t.Fatalf("%s is not in the namespace: %v", nsEnd, err)
	}
	addAddr(t, h, inner, nsAddr)
	if lo, err := h.LinkByName("lo"); err != nil {
		t.Fatal(err)
	} else if err := h.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}

	// Each namespace sees its own links only.
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := linkNames(links), "lo "+nsEnd; got != want {
		t.Errorf("the namespace's links are %q, want %q", got, want)
	}
	if _, err := netlink.LinkByName(nsEnd); err == nil {
		t.Errorf("%s is still visible in the root namespace", nsEnd)
	}

	ping(t, nsAddr)
	udpAcross(t, root, ns)

	// A netem qdisc on the host end (CONFIG_NET_SCH_NETEM: the option
	// the guest_kernel adds); traffic still flows through it.
	netem := netlink.NewNetem(netlink.QdiscAttrs{
		LinkIndex: host.Attrs().Index,
		Handle:    netlink.MakeHandle(1, 0),
		Parent:    netlink.HANDLE_ROOT,
	}, netlink.NetemQdiscAttrs{Latency: 1000, Jitter: 100})
	if err := netlink.QdiscAdd(netem); err != nil {
		t.Fatalf("netem qdisc (CONFIG_NET_SCH_NETEM): %v", err)
	}
	qdiscs, err := netlink.QdiscList(host)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, q := range qdiscs {
		if q.Type() == "netem" {
			found = true
		}
	}
	if !found {
		t.Errorf("no netem qdisc on %s after adding one: %v", hostEnd, qdiscs)
	}
	ping(t, nsAddr)
	fmt.Printf("NETNS-GUEST: goarch=%s veth %s<->%s across namespaces, ping and UDP ok, netem qdisc on %s\n",
		runtime.GOARCH, hostEnd, nsEnd, hostEnd)
}

// addAddr gives link addr/24 and sets it up, through h (nil: the root
// namespace).
func addAddr(t *testing.T, h *netlink.Handle, link netlink.Link, addr string) {
	t.Helper()
	a, err := netlink.ParseAddr(addr + "/24")
	if err != nil {
		t.Fatal(err)
	}
	addrAdd, setUp := netlink.AddrAdd, netlink.LinkSetUp
	if h != nil {
		addrAdd, setUp = h.AddrAdd, h.LinkSetUp
	}
	if err := addrAdd(link, a); err != nil {
		t.Fatalf("%s: address %s: %v", link.Attrs().Name, addr, err)
	}
	if err := setUp(link); err != nil {
		t.Fatalf("%s: up: %v", link.Attrs().Name, err)
	}
}

func linkNames(links []netlink.Link) string {
	var names []string
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}

// ping runs the guest's busybox ping from the root namespace.
func ping(t *testing.T, addr string) {
	t.Helper()
	out, err := exec.Command("ping", "-c", "3", "-W", "5", addr).CombinedOutput()
	if err != nil {
		t.Fatalf("ping %s: %v\n%s", addr, err, out)
	}
	if !strings.Contains(string(out), " 0% packet loss") {
		t.Errorf("ping %s lost packets:\n%s", addr, out)
	}
}

// udpAcross sends a datagram from the root namespace to a socket made in
// ns and gets the reply back: both directions through the pair.
func udpAcross(t *testing.T, root, ns netns.NsHandle) {
	t.Helper()
	// A socket belongs to the namespace of the thread that made it.
	if err := netns.Set(ns); err != nil {
		t.Fatal(err)
	}
	srv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(nsAddr), Port: 7000})
	if setErr := netns.Set(root); setErr != nil {
		t.Fatal(setErr)
	}
	if err != nil {
		t.Fatalf("listening in the namespace: %v", err)
	}
	defer srv.Close()
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 64)
		srv.SetDeadline(time.Now().Add(udpTimeout))
		n, from, err := srv.ReadFromUDP(buf)
		if err == nil {
			_, err = srv.WriteToUDP(append([]byte("echo "), buf[:n]...), from)
		}
		done <- err
	}()
	c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.ParseIP(nsAddr), Port: 7000})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(udpTimeout))
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no UDP reply from the namespace: %v", err)
	}
	if got := string(buf[:n]); got != "echo hello" {
		t.Errorf("UDP reply %q, want %q", got, "echo hello")
	}
	if err := <-done; err != nil && !errors.Is(err, net.ErrClosed) {
		t.Errorf("namespace side: %v", err)
	}
	if ra := c.RemoteAddr().(*net.UDPAddr); !ra.IP.Equal(net.ParseIP(nsAddr)) {
		t.Errorf("reply from %v", ra)
	}
}
