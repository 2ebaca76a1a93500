package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rules-go-vm/rules_go_vm/invm"
)

// busybox is the guest's multi-call binary: its unshare and nsenter
// applets are not linked on PATH, ip and ping are.
const busybox = "/bin/busybox"

// TestVethInNamespace makes a veth pair, moves one end into a new network
// namespace (held by a sleeping process), addresses both ends and pings
// across, both ways, with the guest's busybox only.
func TestVethInNamespace(t *testing.T) {
	invm.Require(t)
	holder := exec.Command(busybox, "unshare", "-n", busybox, "sleep", "300")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { holder.Process.Kill(); holder.Wait() }()
	pid := strconv.Itoa(holder.Process.Pid)
	inNS := func(args ...string) []string {
		return append([]string{busybox, "nsenter", "-t", pid, "-n", busybox}, args...)
	}
	// Wait until the holder is in its own namespace.
	self, _ := os.Readlink("/proc/self/ns/net")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if ns, err := os.Readlink("/proc/" + pid + "/ns/net"); err == nil && ns != self {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the unshare -n holder never entered a new network namespace (CONFIG_NET_NS)")
		}
	}

	// busybox ip names the peer itself: veth0.
	run(t, "ip", "link", "add", "e2e-host", "type", "veth")
	run(t, "ip", "link", "set", "veth0", "netns", pid)
	run(t, "ip", "addr", "add", "10.201.0.1/24", "dev", "e2e-host")
	run(t, "ip", "link", "set", "e2e-host", "up")
	run(t, inNS("ip", "addr", "add", "10.201.0.2/24", "dev", "veth0")...)
	run(t, inNS("ip", "link", "set", "veth0", "up")...)
	run(t, inNS("ip", "link", "set", "lo", "up")...)

	if got, want := links(t, run(t, inNS("ip", "link")...)), "lo veth0"; got != want {
		t.Errorf("the namespace's links are %q, want %q", got, want)
	}
	if got := links(t, run(t, "ip", "link")); strings.Contains(" "+got+" ", " veth0 ") {
		t.Errorf("veth0 is still in the root namespace: %q", got)
	}
	for _, p := range [][]string{{"ping", "-c", "2", "-W", "5", "10.201.0.2"}, inNS("ping", "-c", "2", "-W", "5", "10.201.0.1")} {
		if out := run(t, p...); !strings.Contains(out, " 0% packet loss") {
			t.Errorf("%s lost packets:\n%s", strings.Join(p, " "), out)
		}
	}
	fmt.Printf("E2E-NETNS: machine=%s veth across namespaces, ping both ways ok\n", runtime.GOARCH)
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

var linkLine = regexp.MustCompile(`(?m)^\d+: ([^:@ ]+)[@:]`)

// links returns the sorted link names in `ip link` output.
func links(t *testing.T, out string) string {
	t.Helper()
	var names []string
	for _, m := range linkLine.FindAllStringSubmatch(out, -1) {
		names = append(names, m[1])
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}
