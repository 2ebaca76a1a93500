//go:build dpdk

package dpdk

/*
#include <stdlib.h>
#include <string.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

// The mbuf and burst calls are static inline in DPDK's headers: wrappers
// for cgo, each one call per burst.

// Allocates n mbufs from pool, copies frame i (lens[i] bytes at
// data+offs[i]) into mbuf i and sends them on queue 0; frees what the
// driver did not take. Returns the number sent, or -1 when the pool ran
// dry (nothing sent).
static int rgv_tx(uint16_t port, struct rte_mempool *pool, const uint8_t *data,
		const uint32_t *offs, const uint16_t *lens, uint16_t n) {
	struct rte_mbuf *m[n];
	if (rte_pktmbuf_alloc_bulk(pool, m, n) != 0)
		return -1;
	for (uint16_t i = 0; i < n; i++) {
		char *p = rte_pktmbuf_append(m[i], lens[i]);
		if (p == NULL) {
			rte_pktmbuf_free_bulk(m, n);
			return -2;
		}
		memcpy(p, data + offs[i], lens[i]);
	}
	uint16_t sent = rte_eth_tx_burst(port, 0, m, n);
	if (sent < n)
		rte_pktmbuf_free_bulk(m + sent, n - sent);
	return sent;
}

// Receives up to max frames on queue 0 into buf (cap bytes), their lengths
// into lens; frames that do not fit (or span segments) are counted in
// *dropped. Returns the number of frames stored.
static int rgv_rx(uint16_t port, uint8_t *buf, uint32_t cap, uint16_t *lens, uint16_t max, uint32_t *dropped) {
	struct rte_mbuf *m[max];
	uint16_t n = rte_eth_rx_burst(port, 0, m, max);
	uint32_t off = 0;
	int got = 0;
	*dropped = 0;
	for (uint16_t i = 0; i < n; i++) {
		uint16_t len = rte_pktmbuf_data_len(m[i]);
		if (m[i]->nb_segs != 1 || off + len > cap) {
			(*dropped)++;
		} else {
			memcpy(buf + off, rte_pktmbuf_mtod(m[i], void *), len);
			lens[got++] = len;
			off += len;
		}
		rte_pktmbuf_free(m[i]);
	}
	return got;
}

static const char *rgv_driver(uint16_t port) {
	struct rte_eth_dev_info info;
	if (rte_eth_dev_info_get(port, &info) != 0)
		return NULL;
	return info.driver_name;
}
*/
import "C"

import (
	"fmt"
	"net"
	"unsafe"
)

// PktPool is a packet mbuf mempool (rte_pktmbuf_pool_create).
type PktPool struct {
	p    *C.struct_rte_mempool
	name string
}

// DefaultDataRoom is an mbuf's data room: a full Ethernet frame plus
// headroom (RTE_MBUF_DEFAULT_BUF_SIZE).
const DefaultDataRoom = C.RTE_MBUF_DEFAULT_BUF_SIZE

// NewPktPool makes a pool of n mbufs (2^k-1 is the most efficient) with
// dataRoom bytes each (0: DefaultDataRoom) on the caller's NUMA socket.
func NewPktPool(name string, n uint32, dataRoom uint16) (*PktPool, error) {
	if err := ealUp(); err != nil {
		return nil, err
	}
	if name == "" || n == 0 {
		return nil, fmt.Errorf("%w: pool %q of %d mbufs: want a name and n > 0", ErrOptions, name, n)
	}
	if dataRoom == 0 {
		dataRoom = DefaultDataRoom
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	p := C.rte_pktmbuf_pool_create(cname, C.uint(n), 0, 0, C.uint16_t(dataRoom), C.rte_socket_id_by_idx(0))
	if p == nil {
		return nil, fmt.Errorf("pool %q: %w", name, lastErr("rte_pktmbuf_pool_create"))
	}
	return &PktPool{p: p, name: name}, nil
}

// Available is the number of free mbufs in the pool.
func (p *PktPool) Available() int { return int(C.rte_mempool_avail_count(p.p)) }

// Close frees the pool; its ports must be closed first.
func (p *PktPool) Close() {
	if p.p != nil {
		C.rte_mempool_free(p.p)
		p.p = nil
	}
}

// PortConfig says how to set a port up; zero fields take the defaults.
type PortConfig struct {
	// RXDesc and TXDesc are the ring sizes (default 512 each).
	RXDesc, TXDesc uint16
	// NoPromiscuous leaves promiscuous mode off (it is on by default: a
	// test sends frames to MACs the port does not own).
	NoPromiscuous bool
}

// Port is an ethdev port started with one RX and one TX queue.
type Port struct {
	id     uint16
	pool   *PktPool
	closed bool
}

// PortByName returns the id of the port the EAL made for a device: a PCI
// address ("0000:00:10.0") or a virtual device's name ("net_ring0").
func PortByName(name string) (uint16, error) {
	if err := ealUp(); err != nil {
		return 0, err
	}
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	var id C.uint16_t
	if rc := C.rte_eth_dev_get_port_by_name(cs, &id); rc != 0 {
		return 0, fmt.Errorf("%w: no port for %q (the EAL has %d ports; was the device in EALOptions.Allow or VDevs?)", ErrNoPort, name, PortCount())
	}
	return uint16(id), nil
}

// PortCount is the number of ethdev ports the EAL probed.
func PortCount() int { return int(C.rte_eth_dev_count_avail()) }

// OpenPort configures port id with one RX and one TX queue whose RX side
// takes mbufs from pool, and starts it.
func OpenPort(id uint16, pool *PktPool, cfg PortConfig) (*Port, error) {
	if err := ealUp(); err != nil {
		return nil, err
	}
	if pool == nil || pool.p == nil {
		return nil, fmt.Errorf("%w: port %d: no packet pool", ErrOptions, id)
	}
	if C.rte_eth_dev_is_valid_port(C.uint16_t(id)) == 0 {
		return nil, fmt.Errorf("%w: port %d (the EAL has %d ports)", ErrNoPort, id, PortCount())
	}
	rxd, txd := orDefault(cfg.RXDesc, 512), orDefault(cfg.TXDesc, 512)
	var conf C.struct_rte_eth_conf
	port := C.uint16_t(id)
	if rc := C.rte_eth_dev_configure(port, 1, 1, &conf); rc != 0 {
		return nil, fmt.Errorf("port %d: %w", id, dpdkErr("rte_eth_dev_configure", int(rc)))
	}
	if rc := C.rte_eth_dev_adjust_nb_rx_tx_desc(port, &rxd, &txd); rc != 0 {
		return nil, fmt.Errorf("port %d: %w", id, dpdkErr("rte_eth_dev_adjust_nb_rx_tx_desc", int(rc)))
	}
	socket := C.uint(C.rte_eth_dev_socket_id(port))
	if rc := C.rte_eth_rx_queue_setup(port, 0, rxd, socket, nil, pool.p); rc != 0 {
		return nil, fmt.Errorf("port %d: %w", id, dpdkErr("rte_eth_rx_queue_setup", int(rc)))
	}
	if rc := C.rte_eth_tx_queue_setup(port, 0, txd, socket, nil); rc != 0 {
		return nil, fmt.Errorf("port %d: %w", id, dpdkErr("rte_eth_tx_queue_setup", int(rc)))
	}
	if rc := C.rte_eth_dev_start(port); rc != 0 {
		return nil, fmt.Errorf("port %d: %w", id, dpdkErr("rte_eth_dev_start", int(rc)))
	}
	if !cfg.NoPromiscuous {
		// Not every PMD has the mode (net_ring does not): best effort.
		C.rte_eth_promiscuous_enable(port)
	}
	return &Port{id: id, pool: pool}, nil
}

func orDefault(v, def uint16) C.uint16_t {
	if v == 0 {
		v = def
	}
	return C.uint16_t(v)
}

// ID is the port's ethdev id.
func (p *Port) ID() uint16 { return p.id }

// Name is the port's device name: its PCI address or virtual device name.
func (p *Port) Name() string {
	var buf [C.RTE_ETH_NAME_MAX_LEN]C.char
	if C.rte_eth_dev_get_name_by_port(C.uint16_t(p.id), &buf[0]) != 0 {
		return ""
	}
	return C.GoString(&buf[0])
}

// DriverName is the PMD driving the port as DPDK names it (e.g.
// "net_e1000_em", "net_virtio", "net_ring").
func (p *Port) DriverName() string {
	if s := C.rgv_driver(C.uint16_t(p.id)); s != nil {
		return C.GoString(s)
	}
	return ""
}

// MAC is the port's MAC address.
func (p *Port) MAC() (net.HardwareAddr, error) {
	var a C.struct_rte_ether_addr
	if rc := C.rte_eth_macaddr_get(C.uint16_t(p.id), &a); rc != 0 {
		return nil, fmt.Errorf("port %d: %w", p.id, dpdkErr("rte_eth_macaddr_get", int(rc)))
	}
	return C.GoBytes(unsafe.Pointer(&a.addr_bytes[0]), 6), nil
}

// MaxBurst is the most frames one TxBurst or RxBurst call moves.
const MaxBurst = 256

// TxBurst sends up to MaxBurst frames on the TX queue and returns how many
// the driver took (the rest were not sent; send them again). Each frame is
// copied into an mbuf from the port's pool.
func (p *Port) TxBurst(frames [][]byte) (int, error) {
	if p.closed {
		return 0, fmt.Errorf("port %d: %w", p.id, ErrClosed)
	}
	if len(frames) > MaxBurst {
		return 0, fmt.Errorf("%w: %d frames in one burst, at most %d", ErrOptions, len(frames), MaxBurst)
	}
	if len(frames) == 0 {
		return 0, nil
	}
	var data []byte
	offs := make([]C.uint32_t, len(frames))
	lens := make([]C.uint16_t, len(frames))
	for i, f := range frames {
		if len(f) == 0 || len(f) > int(DefaultDataRoom)-C.RTE_PKTMBUF_HEADROOM {
			return 0, fmt.Errorf("%w: frame %d is %d bytes", ErrOptions, i, len(f))
		}
		offs[i], lens[i] = C.uint32_t(len(data)), C.uint16_t(len(f))
		data = append(data, f...)
	}
	cdata := C.CBytes(data)
	defer C.free(cdata)
	n := C.rgv_tx(C.uint16_t(p.id), p.pool.p, (*C.uint8_t)(cdata), &offs[0], &lens[0], C.uint16_t(len(frames)))
	switch {
	case n == -1:
		return 0, fmt.Errorf("port %d: pool %q has %d free mbufs, %d needed: %w", p.id, p.pool.name, p.pool.Available(), len(frames), dpdkErr("rte_pktmbuf_alloc_bulk", C.ENOBUFS))
	case n < 0:
		return 0, fmt.Errorf("port %d: a frame does not fit an mbuf of pool %q: %w", p.id, p.pool.name, dpdkErr("rte_pktmbuf_append", C.ENOSPC))
	}
	return int(n), nil
}

// rxBufSize bounds the frames one RxBurst copies out.
const rxBufSize = MaxBurst * 2048

// RxBurst receives up to max (at most MaxBurst) frames from the RX queue,
// each copied out of its mbuf; it does not wait. Frames that span several
// mbufs (jumbo) are dropped and counted in the error.
func (p *Port) RxBurst(max int) ([][]byte, error) {
	if p.closed {
		return nil, fmt.Errorf("port %d: %w", p.id, ErrClosed)
	}
	if max <= 0 || max > MaxBurst {
		return nil, fmt.Errorf("%w: burst of %d, want 1 to %d", ErrOptions, max, MaxBurst)
	}
	buf := C.malloc(rxBufSize)
	defer C.free(buf)
	lens := make([]C.uint16_t, max)
	var dropped C.uint32_t
	n := int(C.rgv_rx(C.uint16_t(p.id), (*C.uint8_t)(buf), rxBufSize, &lens[0], C.uint16_t(max), &dropped))
	frames := make([][]byte, n)
	all := unsafe.Slice((*byte)(buf), rxBufSize)
	off := 0
	for i := range n {
		l := int(lens[i])
		frames[i] = append([]byte(nil), all[off:off+l]...)
		off += l
	}
	if dropped > 0 {
		return frames, fmt.Errorf("port %d: %d multi-segment frames dropped: %w", p.id, dropped, ErrOptions)
	}
	return frames, nil
}

// Stats are a port's counters (rte_eth_stats).
type Stats struct {
	// IPackets, OPackets, IBytes and OBytes count what was received and
	// sent.
	IPackets, OPackets, IBytes, OBytes uint64
	// IMissed counts frames the hardware dropped (RX ring full); IErrors
	// and OErrors failed frames; RxNoMbuf RX mbuf allocation failures.
	IMissed, IErrors, OErrors, RxNoMbuf uint64
}

// Stats reads the port's counters.
func (p *Port) Stats() (Stats, error) {
	var s C.struct_rte_eth_stats
	if rc := C.rte_eth_stats_get(C.uint16_t(p.id), &s); rc != 0 {
		return Stats{}, fmt.Errorf("port %d: %w", p.id, dpdkErr("rte_eth_stats_get", int(rc)))
	}
	return Stats{
		IPackets: uint64(s.ipackets), OPackets: uint64(s.opackets), IBytes: uint64(s.ibytes), OBytes: uint64(s.obytes),
		IMissed: uint64(s.imissed), IErrors: uint64(s.ierrors), OErrors: uint64(s.oerrors), RxNoMbuf: uint64(s.rx_nombuf),
	}, nil
}

// Close stops and closes the port. Closing twice is a no-op.
func (p *Port) Close() error {
	if p.closed {
		return nil
	}
	p.closed = true
	port := C.uint16_t(p.id)
	if rc := C.rte_eth_dev_stop(port); rc != 0 {
		return fmt.Errorf("port %d: %w", p.id, dpdkErr("rte_eth_dev_stop", int(rc)))
	}
	if rc := C.rte_eth_dev_close(port); rc != 0 {
		return fmt.Errorf("port %d: %w", p.id, dpdkErr("rte_eth_dev_close", int(rc)))
	}
	return nil
}
