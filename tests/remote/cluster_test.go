//go:build bazel

package remote

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Bounds of the cluster's life cycle.
const (
	// clusterStartTimeout bounds the wait for every server to listen and
	// every worker to register with the scheduler.
	clusterStartTimeout = 60 * time.Second
	// stopGrace is how long a process gets after SIGTERM before SIGKILL
	// (bb_worker ignores SIGTERM).
	stopGrace = 3 * time.Second
	// pollInterval paces every readiness poll.
	pollInterval = 100 * time.Millisecond
)

// Sizes of the storage and worker files. The files are sparse: only what
// is written takes space.
const (
	casBytes      = 16 << 30
	filePoolBytes = 8 << 30
	workerCache   = 8 << 30
	messageBytes  = 2 << 20
)

// pool is one kind of worker: its name, the platform properties it
// advertises (sorted by name, as REv2 wants them), and how many actions its
// one worker runs at once.
type pool struct {
	name        string
	properties  [][2]string
	concurrency int
}

// pools are the two worker pools: plain Linux workers (//:remote_linux),
// which take every build action and the accel = "auto" tests, and the ones
// advertising what //:remote_kvm asks for. The plain pool runs more actions
// at once than this machine has cores, so that a worker's input fetches
// and output uploads overlap with other actions' execution.
var pools = []pool{
	{name: "linux", properties: [][2]string{{"OSFamily", "Linux"}}, concurrency: 4},
	{name: "kvm", properties: [][2]string{{"OSFamily", "Linux"}, {"kvm", "true"}}, concurrency: 2},
}

// process is one cluster process, in its own process group.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

// stop ends the process group: SIGTERM, then SIGKILL after stopGrace.
func (p *process) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopGrace):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// kill ends the process group at once, as a machine that dies would.
func (p *process) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// cluster is a Buildbarn cluster on localhost: storage, scheduler, frontend
// and one worker + runner per pool, all state in dir.
type cluster struct {
	dir      string
	endpoint string // what Bazel's --remote_executor gets
	procs    []*process
	workers  map[string]*process // by pool name
	runners  map[string]*process
	started  time.Duration // from the first start to every worker registered
}

// buildDir is where pool's worker runs actions.
func (c *cluster) buildDir(pool string) string {
	return filepath.Join(c.dir, "worker-"+pool, "build")
}

// workerID is what pool's worker calls itself: in the execution metadata
// (workerId) and in the action's environment ($RULES_GO_VM_WORKER), which
// the launcher names in its infrastructure failures.
func workerID(pool string) string { return "rules-go-vm-test-" + pool + "-0" }

// startCluster starts a cluster with the binaries in bin; its processes
// log into logs. Every process is ended when the test ends, on every path.
func startCluster(t *testing.T, bin, dir, logs string) *cluster {
	t.Helper()
	c := &cluster{dir: dir, workers: map[string]*process{}, runners: map[string]*process{}}
	t.Cleanup(func() {
		for i := len(c.procs) - 1; i >= 0; i-- {
			c.procs[i].stop()
		}
	})
	ports := freePorts(t, 5)
	storage, frontend, schedClients, schedWorkers, schedAdmin := ports[0], ports[1], ports[2], ports[3], ports[4]
	c.endpoint = "grpc://" + frontend
	if err := c.writeConfigs(storage, frontend, schedClients, schedWorkers, schedAdmin); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for _, s := range []struct{ name, binary, addr string }{
		{"storage", "bb_storage", storage},
		{"scheduler", "bb_scheduler", schedWorkers},
		{"frontend", "bb_storage", frontend},
	} {
		c.start(t, bin, logs, s.name, s.binary)
		if err := waitListening(s.addr, c.procs[len(c.procs)-1]); err != nil {
			t.Fatalf("%s: %v (log: %s)", s.name, err, filepath.Join(logs, s.name+".log"))
		}
	}
	for _, p := range pools {
		c.runners[p.name] = c.start(t, bin, logs, "runner-"+p.name, "bb_runner")
		c.workers[p.name] = c.start(t, bin, logs, "worker-"+p.name, "bb_worker")
	}
	if err := c.waitWorkers("http://" + schedAdmin + "/"); err != nil {
		t.Fatalf("%v (logs in %s)", err, logs)
	}
	c.started = time.Since(start)
	fmt.Printf("remote: Buildbarn cluster (storage, scheduler, frontend, %d workers) up in %v at %s\n",
		len(pools), c.started.Round(time.Millisecond), c.endpoint)
	return c
}

// start runs bin/binary with the config name.json, logging into logs/name.log.
func (c *cluster) start(t *testing.T, bin, logs, name, binary string) *process {
	t.Helper()
	log, err := os.Create(filepath.Join(logs, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(filepath.Join(bin, binary), filepath.Join(c.dir, name+".json"))
	cmd.Dir = c.dir
	cmd.Stdout, cmd.Stderr = log, log
	// Its own group (ended as a whole), and SIGKILL when this test dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	c.procs = append(c.procs, p)
	return p
}

// waitListening waits until addr accepts connections or p exits.
func waitListening(addr string, p *process) error {
	deadline := time.Now().Add(clusterStartTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("exited before listening on %s: %v", addr, p.cmd.ProcessState)
		default:
		}
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			return nil
		}
		time.Sleep(pollInterval)
	}
	return fmt.Errorf("not listening on %s after %v", addr, clusterStartTimeout)
}

// waitWorkers waits until the scheduler's admin page shows a platform
// queue per pool (a queue exists once a worker of that platform has
// synchronized).
func (c *cluster) waitWorkers(admin string) error {
	deadline := time.Now().Add(clusterStartTimeout)
	for time.Now().Before(deadline) {
		for name, w := range c.workers {
			select {
			case <-w.done:
				return fmt.Errorf("the %s worker exited during start-up: %v", name, w.cmd.ProcessState)
			default:
			}
		}
		if page, err := httpGet(admin); err == nil && queuesReady(page) {
			return nil
		}
		time.Sleep(pollInterval)
	}
	return fmt.Errorf("the workers did not register with the scheduler within %v (no platform queue per pool on %s)", clusterStartTimeout, admin)
}

// queuesReady tells whether the scheduler's page lists every pool's
// platform: one queue per pool, and each property badge it renders.
func queuesReady(page string) bool {
	if strings.Count(page, ">"+pools[0].properties[0][0]+"=") < len(pools) {
		return false
	}
	for _, p := range pools {
		for _, kv := range p.properties {
			if !strings.Contains(page, fmt.Sprintf(">%s=&#34;%s&#34;<", kv[0], kv[1])) {
				return false
			}
		}
	}
	return true
}

func httpGet(url string) (string, error) {
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if resp.StatusCode != http.StatusOK {
		return b.String(), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return b.String(), nil
}

// freePorts picks n free localhost ports (listening on :0, then closing).
func freePorts(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		addrs = append(addrs, l.Addr().String())
	}
	for _, l := range ls {
		l.Close()
	}
	return addrs
}

// allow is Buildbarn's authorizer and authentication policy that lets
// everything in (the cluster listens on 127.0.0.1 only).
var allow = map[string]any{"allow": map[string]any{}}

// writeConfigs writes one JSON config per process (jsonnet reads JSON) and
// makes the directories they name.
func (c *cluster) writeConfigs(storage, frontend, schedClients, schedWorkers, schedAdmin string) error {
	grpcServer := func(addr string) []any {
		return []any{map[string]any{"listenAddresses": []string{addr}, "authenticationPolicy": allow}}
	}
	grpcClient := func(addr string) map[string]any { return map[string]any{"address": addr} }
	localStore := func(dir string, blocks, newBlocks int, keyMapBytes, blockBytes int64) map[string]any {
		return map[string]any{"local": map[string]any{
			"keyLocationMapOnBlockDevice":      map[string]any{"file": map[string]any{"path": filepath.Join(dir, "key_location_map"), "sizeBytes": keyMapBytes}},
			"keyLocationMapMaximumGetAttempts": 16,
			"keyLocationMapMaximumPutAttempts": 64,
			"oldBlocks":                        8,
			"currentBlocks":                    blocks,
			"newBlocks":                        newBlocks,
			"blocksOnBlockDevice": map[string]any{
				"source":      map[string]any{"file": map[string]any{"path": filepath.Join(dir, "blocks"), "sizeBytes": blockBytes}},
				"spareBlocks": 3,
			},
			"persistent": map[string]any{"stateDirectoryPath": filepath.Join(dir, "persistent_state"), "minimumEpochInterval": "300s"},
		}}
	}
	cas, ac := filepath.Join(c.dir, "storage-cas"), filepath.Join(c.dir, "storage-ac")
	blobstore := map[string]any{
		"contentAddressableStorage": map[string]any{"grpc": grpcClient(storage)},
		"actionCache": map[string]any{"completenessChecking": map[string]any{
			"backend":                   map[string]any{"grpc": grpcClient(storage)},
			"maximumTotalTreeSizeBytes": 64 << 20,
		}},
	}
	configs := map[string]any{
		"storage": map[string]any{
			"grpcServers":             grpcServer(storage),
			"maximumMessageSizeBytes": messageBytes,
			"global":                  map[string]any{},
			"contentAddressableStorage": map[string]any{
				"backend":       localStore(cas, 24, 3, 400<<20, casBytes),
				"getAuthorizer": allow, "putAuthorizer": allow, "findMissingAuthorizer": allow,
			},
			"actionCache": map[string]any{
				"backend":       localStore(ac, 24, 1, 1<<20, 64<<20),
				"getAuthorizer": allow, "putAuthorizer": allow,
			},
		},
		"frontend": map[string]any{
			"grpcServers": grpcServer(frontend),
			"schedulers": map[string]any{"": map[string]any{"endpoint": map[string]any{
				"address":                       schedClients,
				"addMetadataJmespathExpression": map[string]any{"expression": `{"build.bazel.remote.execution.v2.requestmetadata-bin": incomingGRPCMetadata."build.bazel.remote.execution.v2.requestmetadata-bin"}`},
			}}},
			"maximumMessageSizeBytes": messageBytes,
			"global":                  map[string]any{},
			"contentAddressableStorage": map[string]any{
				"backend":       blobstore["contentAddressableStorage"],
				"getAuthorizer": allow, "putAuthorizer": allow, "findMissingAuthorizer": allow,
			},
			"actionCache": map[string]any{
				"backend":       blobstore["actionCache"],
				"getAuthorizer": allow, "putAuthorizer": allow,
			},
			"executeAuthorizer": allow,
		},
		"scheduler": map[string]any{
			"adminHttpServers":          []any{map[string]any{"listenAddresses": []string{schedAdmin}, "authenticationPolicy": allow}},
			"clientGrpcServers":         grpcServer(schedClients),
			"workerGrpcServers":         grpcServer(schedWorkers),
			"browserUrl":                "http://localhost:7984",
			"contentAddressableStorage": blobstore["contentAddressableStorage"],
			"maximumMessageSizeBytes":   messageBytes,
			"global":                    map[string]any{},
			"executeAuthorizer":         allow, "modifyDrainsAuthorizer": allow,
			"killOperationsAuthorizer": allow, "synchronizeAuthorizer": allow,
			"actionRouter": map[string]any{"simple": map[string]any{
				"platformKeyExtractor":     map[string]any{"action": map[string]any{}},
				"invocationKeyExtractors":  []any{map[string]any{"correlatedInvocationsId": map[string]any{}}, map[string]any{"toolInvocationId": map[string]any{}}},
				"initialSizeClassAnalyzer": map[string]any{"defaultExecutionTimeout": "1800s", "maximumExecutionTimeout": "7200s"},
			}},
			// A pool whose workers are all gone stops taking actions soon:
			// Bazel then hears of it instead of waiting.
			"platformQueueWithNoWorkersTimeout": "10s",
		},
	}
	dirs := []string{filepath.Join(cas, "persistent_state"), filepath.Join(ac, "persistent_state")}
	for _, p := range pools {
		wd := filepath.Join(c.dir, "worker-"+p.name)
		var props []any
		for _, kv := range p.properties {
			props = append(props, map[string]any{"name": kv[0], "value": kv[1]})
		}
		runnerSocket := filepath.Join(wd, "runner")
		configs["runner-"+p.name] = map[string]any{
			"buildDirectoryPath": c.buildDir(p.name),
			"grpcServers":        []any{map[string]any{"listenPaths": []string{runnerSocket}, "authenticationPolicy": allow}},
			"global":             map[string]any{},
			// $TMPDIR inside the action's own directory: a scratch space
			// removed with it.
			"setTmpdirEnvironmentVariable": true,
		}
		configs["worker-"+p.name] = map[string]any{
			"blobstore":               blobstore,
			"browserUrl":              "http://localhost:7984",
			"maximumMessageSizeBytes": messageBytes,
			"scheduler":               grpcClient(schedWorkers),
			"global":                  map[string]any{},
			"buildDirectories": []any{map[string]any{
				"native": map[string]any{
					"buildDirectoryPath":     c.buildDir(p.name),
					"cacheDirectoryPath":     filepath.Join(wd, "cache"),
					"maximumCacheFileCount":  100000,
					"maximumCacheSizeBytes":  workerCache,
					"cacheReplacementPolicy": "LEAST_RECENTLY_USED",
				},
				"runners": []any{map[string]any{
					"endpoint":                 grpcClient("unix:" + runnerSocket),
					"concurrency":              p.concurrency,
					"maximumFilePoolFileCount": 100000,
					"maximumFilePoolSizeBytes": filePoolBytes,
					"platform":                 map[string]any{"properties": props},
					"workerId":                 map[string]any{"pool": p.name, "worker": workerID(p.name)},
					"environmentVariables":     map[string]any{"RULES_GO_VM_WORKER": workerID(p.name)},
				}},
			}},
			"filePool": map[string]any{"blockDevice": map[string]any{"file": map[string]any{
				"path": filepath.Join(wd, "filepool"), "sizeBytes": filePoolBytes,
			}}},
			"inputDownloadConcurrency": 10,
			"outputUploadConcurrency":  11,
			"directoryCache": map[string]any{
				"maximumCount": 10000, "maximumSizeBytes": 16 << 20, "cacheReplacementPolicy": "LEAST_RECENTLY_USED",
			},
		}
		dirs = append(dirs, c.buildDir(p.name), filepath.Join(wd, "cache"))
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	var errs []error
	for name, cfg := range configs {
		b, err := json.MarshalIndent(cfg, "", "  ")
		if err != nil {
			return err
		}
		errs = append(errs, os.WriteFile(filepath.Join(c.dir, name+".json"), b, 0o644))
	}
	return errors.Join(errs...)
}
