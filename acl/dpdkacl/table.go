//go:build dpdk

package dpdkacl

/*
#include <stddef.h>
#include <string.h>
#include <rte_acl.h>
#include <rte_errno.h>
#include <rte_memory.h>

static struct rte_acl_ctx *goacl_create(const char *name, uint32_t nfields, uint32_t max_rules) {
	struct rte_acl_param p;
	memset(&p, 0, sizeof(p));
	p.name = name;
	p.socket_id = SOCKET_ID_ANY;
	p.rule_size = RTE_ACL_RULE_SZ(nfields);
	p.max_rule_num = max_rules;
	return rte_acl_create(&p);
}

static size_t goacl_rule_sz(uint32_t nfields) { return RTE_ACL_RULE_SZ(nfields); }
static size_t goacl_field_off(void) { return offsetof(struct rte_acl_rule, field); }

static void goacl_set_def(struct rte_acl_config *cfg, uint32_t i, uint8_t type, uint8_t size,
		uint8_t input_index, uint32_t offset) {
	cfg->defs[i].type = type;
	cfg->defs[i].size = size;
	cfg->defs[i].field_index = (uint8_t)i;
	cfg->defs[i].input_index = input_index;
	cfg->defs[i].offset = offset;
}

// goacl_classify classifies n <= 64 keys laid out stride bytes apart in buf.
static int goacl_classify(const struct rte_acl_ctx *ctx, const uint8_t *buf, uint32_t stride,
		uint32_t n, uint32_t *results, uint32_t categories) {
	const uint8_t *data[64];
	uint32_t i;
	for (i = 0; i < n; i++)
		data[i] = buf + (size_t)i * stride;
	return rte_acl_classify(ctx, data, results, n, categories);
}

static int goacl_errno2(void) { return rte_errno; }
*/
import "C"

import (
	"encoding/binary"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/rules-go-vm/rules_go_vm/acl/key"
	"github.com/rules-go-vm/rules_go_vm/acl/layout"
)

// MaxBatch is the most keys classified per cgo call.
const MaxBatch = 64

// MaxCategories is rte_acl's RTE_ACL_MAX_CATEGORIES.
const MaxCategories = 16

// Alg selects an rte_acl classify implementation (RTE_ACL_CLASSIFY_*).
type Alg int

// The classify implementations. Availability depends on the CPU and on how
// DPDK was built; [Table.SetAlg] reports unsupported ones.
const (
	// AlgDefault lets DPDK pick the best implementation for the CPU.
	AlgDefault Alg = C.RTE_ACL_CLASSIFY_DEFAULT
	// AlgScalar is the generic implementation.
	AlgScalar Alg = C.RTE_ACL_CLASSIFY_SCALAR
	// AlgSSE needs SSE4.1.
	AlgSSE Alg = C.RTE_ACL_CLASSIFY_SSE
	// AlgAVX2 needs AVX2.
	AlgAVX2 Alg = C.RTE_ACL_CLASSIFY_AVX2
	// AlgAVX512x16 needs AVX-512 (16 flows in parallel).
	AlgAVX512x16 Alg = C.RTE_ACL_CLASSIFY_AVX512X16
	// AlgAVX512x32 needs AVX-512 (32 flows in parallel).
	AlgAVX512x32 Alg = C.RTE_ACL_CLASSIFY_AVX512X32
)

// String names the implementation.
func (a Alg) String() string {
	switch a {
	case AlgDefault:
		return "default"
	case AlgScalar:
		return "scalar"
	case AlgSSE:
		return "sse"
	case AlgAVX2:
		return "avx2"
	case AlgAVX512x16:
		return "avx512x16"
	case AlgAVX512x32:
		return "avx512x32"
	}
	return fmt.Sprintf("Alg(%d)", int(a))
}

// Options configures a table.
type Options struct {
	// Name is the rte_acl context name (unique per process; at most 31
	// bytes). Empty picks a unique name.
	Name string
	// Categories is the number of result categories, 1..16 (0 means 1).
	Categories int
	// UniquePriorities rejects rule sets in which two rules share a priority.
	UniquePriorities bool
	// Alg is the classify implementation (AlgDefault lets DPDK choose).
	Alg Alg
	// MaxSize caps rte_acl's run-time structures in bytes (0 = no cap).
	MaxSize uint64
	// EAL is passed to InitEAL if the EAL is not up yet.
	EAL EALOptions
}

// Validate checks the options.
func (o Options) Validate() error {
	if len(o.Name) >= C.RTE_ACL_NAMESIZE {
		return fmt.Errorf("%w: name %q longer than %d bytes", ErrOptions, o.Name, C.RTE_ACL_NAMESIZE-1)
	}
	if o.Categories < 0 || o.Categories > MaxCategories {
		return fmt.Errorf("%w: %d categories (max %d): %w", ErrOptions, o.Categories, MaxCategories, key.ErrCategory)
	}
	return o.EAL.Validate()
}

var ctxSeq atomic.Uint64

// Table is an rte_acl classifier over keys of a runtime schema. Classify
// methods are safe for concurrent use; Close and SetAlg are not.
type Table[A any] struct {
	schema  *key.Schema
	lay     *layout.Layout
	ctx     *C.struct_rte_acl_ctx
	cats    int // categories the caller sees
	ccats   int // categories passed to rte_acl_classify (1 or multiple of 4)
	actions []A
	scratch sync.Pool
}

type scratch struct {
	in  []byte
	res []uint32
}

// New lowers and validates entries against s, plans the layout, builds an
// rte_acl context and returns the table. It initialises the EAL (with
// o.EAL) if needed.
func New[A any](s *key.Schema, entries []key.Entry[A], o Options) (*Table[A], error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	lay, err := layout.Plan(s)
	if err != nil {
		return nil, err
	}
	rules := make([]key.Rule, len(entries))
	for i := range entries {
		rules[i] = entries[i].Rule
	}
	low, err := key.LowerAll(s, rules, key.LowerOptions{Categories: max(o.Categories, 1), UniquePriorities: o.UniquePriorities})
	if err != nil {
		return nil, err
	}
	if len(entries) >= C.RTE_ACL_MAX_PRIORITY {
		return nil, fmt.Errorf("%w: %d rules (max %d)", ErrOptions, len(entries), C.RTE_ACL_MAX_PRIORITY-1)
	}
	if err := InitEAL(o.EAL); err != nil {
		return nil, err
	}
	t := &Table[A]{schema: s, lay: lay, cats: max(o.Categories, 1)}
	t.ccats = t.cats
	if t.ccats > 1 {
		m := int(C.RTE_ACL_RESULTS_MULTIPLIER)
		t.ccats = (t.ccats + m - 1) / m * m
	}
	t.actions = make([]A, len(entries))
	for i := range entries {
		t.actions[i] = entries[i].Action
	}
	t.scratch.New = func() any {
		return &scratch{in: make([]byte, MaxBatch*lay.Stride), res: make([]uint32, MaxBatch*t.ccats)}
	}
	if len(entries) == 0 {
		return t, nil // rte_acl refuses to build an empty context: all misses
	}
	name := o.Name
	if name == "" {
		name = fmt.Sprintf("goacl%d", ctxSeq.Add(1))
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	nf := len(lay.Defs)
	t.ctx = C.goacl_create(cname, C.uint32_t(nf), C.uint32_t(len(entries)))
	if t.ctx == nil {
		return nil, dpdkErr("rte_acl_create", int(C.goacl_errno2()))
	}
	if err := t.addRules(low); err != nil {
		t.Close()
		return nil, err
	}
	var cfg C.struct_rte_acl_config
	cfg.num_categories = C.uint32_t(t.cats)
	cfg.num_fields = C.uint32_t(nf)
	cfg.max_size = C.size_t(o.MaxSize)
	for i, d := range lay.Defs {
		C.goacl_set_def(&cfg, C.uint32_t(i), C.uint8_t(d.Type), C.uint8_t(d.Size), C.uint8_t(d.InputIndex), C.uint32_t(d.Offset))
	}
	if rc := C.rte_acl_build(t.ctx, &cfg); rc != 0 {
		t.Close()
		return nil, dpdkErr("rte_acl_build", int(rc))
	}
	if o.Alg != AlgDefault {
		if err := t.SetAlg(o.Alg); err != nil {
			t.Close()
			return nil, err
		}
	}
	return t, nil
}

// addRules writes rte_acl_rule records into an 8-byte aligned Go buffer
// (no Go pointers inside, so it may be passed to C) and adds them.
func (t *Table[A]) addRules(low []key.Lowered) error {
	n := len(low)
	nf := len(t.lay.Defs)
	rsz := int(C.goacl_rule_sz(C.uint32_t(nf)))
	foff := int(C.goacl_field_off())
	// Unique rte_acl priorities from the (priority desc, index asc) rank.
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return low[order[a]].Priority > low[order[b]].Priority })
	prio := make([]int32, n)
	for rank, i := range order {
		prio[i] = int32(n - rank)
	}
	words := make([]uint64, (n*rsz+7)/8)
	buf := unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), len(words)*8)
	cols := make([]layout.Column, nf)
	for i := range low {
		r := buf[i*rsz : (i+1)*rsz]
		binary.LittleEndian.PutUint32(r[0:], low[i].Categories)
		binary.LittleEndian.PutUint32(r[4:], uint32(prio[i]))
		binary.LittleEndian.PutUint32(r[8:], uint32(i+1))
		t.lay.Columns(&low[i], cols)
		for f, c := range cols {
			binary.LittleEndian.PutUint64(r[foff+16*f:], c.Value)
			binary.LittleEndian.PutUint64(r[foff+16*f+8:], c.MaskRange)
		}
	}
	rc := C.rte_acl_add_rules(t.ctx, (*C.struct_rte_acl_rule)(unsafe.Pointer(&words[0])), C.uint32_t(n))
	if rc != 0 {
		return dpdkErr("rte_acl_add_rules", int(rc))
	}
	return nil
}

// SetAlg selects the classify implementation (rte_acl_set_ctx_classify).
func (t *Table[A]) SetAlg(a Alg) error {
	if t.ctx == nil {
		return nil
	}
	if rc := C.rte_acl_set_ctx_classify(t.ctx, C.enum_rte_acl_classify_alg(a)); rc != 0 {
		return fmt.Errorf("classify alg %v: %w", a, dpdkErr("rte_acl_set_ctx_classify", int(rc)))
	}
	return nil
}

// Close frees the rte_acl context.
func (t *Table[A]) Close() {
	if t.ctx != nil {
		C.rte_acl_free(t.ctx)
		t.ctx = nil
	}
}

// CContext returns the underlying struct rte_acl_ctx pointer (nil for an
// empty table), for C code such as benchmarks; it is valid until Close.
func (t *Table[A]) CContext() unsafe.Pointer { return unsafe.Pointer(t.ctx) }

// Schema returns the key schema.
func (t *Table[A]) Schema() *key.Schema { return t.schema }

// Layout returns the planned rte_acl layout; ClassifyInput takes keys in it.
func (t *Table[A]) Layout() *layout.Layout { return t.lay }

// Len returns the number of rules.
func (t *Table[A]) Len() int { return len(t.actions) }

// Categories returns the number of categories.
func (t *Table[A]) Categories() int { return t.cats }

// ResultStride returns the number of results per key ClassifyInput writes
// (Categories rounded up to rte_acl's multiple of 4 when above 1).
func (t *Table[A]) ResultStride() int { return t.ccats }

// Action returns the action of the rule with insertion index i.
func (t *Table[A]) Action(i int) A { return t.actions[i] }

// ClassifyInput classifies n keys laid out Layout().Stride bytes apart in
// in (the planned input layout) with one cgo call per MaxBatch keys. For key
// i and category c, results[i*ResultStride()+c] is the insertion index of
// the best rule plus one, or 0 for a miss.
func (t *Table[A]) ClassifyInput(in []byte, n int, results []uint32) error {
	stride := t.lay.Stride
	if len(in) < n*stride || len(results) < n*t.ccats {
		return fmt.Errorf("acl: %d keys need %d input bytes and %d results: %w", n, n*stride, n*t.ccats, key.ErrKeyLength)
	}
	if t.ctx == nil {
		clear(results[:n*t.ccats])
		return nil
	}
	for start := 0; start < n; start += MaxBatch {
		m := min(MaxBatch, n-start)
		rc := C.goacl_classify(t.ctx, (*C.uint8_t)(unsafe.Pointer(&in[start*stride])), C.uint32_t(stride),
			C.uint32_t(m), (*C.uint32_t)(unsafe.Pointer(&results[start*t.ccats])), C.uint32_t(t.ccats))
		if rc != 0 {
			return dpdkErr("rte_acl_classify", int(rc))
		}
	}
	return nil
}

// Match returns the insertion index of the best category-0 rule matching a
// canonically packed key (see key.Schema), or -1.
func (t *Table[A]) Match(packed []byte) int {
	if len(packed) != t.schema.Size() {
		panic(fmt.Sprintf("dpdkacl: %d-byte key for a %d-byte schema: %v", len(packed), t.schema.Size(), key.ErrKeyLength))
	}
	s := t.scratch.Get().(*scratch)
	defer t.scratch.Put(s)
	t.lay.Pack(s.in, packed)
	if err := t.ClassifyInput(s.in, 1, s.res); err != nil {
		panic(err) // arguments were validated; only a DPDK bug gets here
	}
	return int(s.res[0]) - 1
}

// MatchCategories writes, for each category c, the insertion index of the
// best rule matching packed in c (or -1) to out[c].
func (t *Table[A]) MatchCategories(packed []byte, out []int) {
	s := t.scratch.Get().(*scratch)
	defer t.scratch.Put(s)
	t.lay.Pack(s.in, packed)
	if err := t.ClassifyInput(s.in, 1, s.res); err != nil {
		panic(err)
	}
	for c := 0; c < t.cats; c++ {
		out[c] = int(s.res[c]) - 1
	}
}

// Lookup returns the action of the best category-0 rule matching packed.
func (t *Table[A]) Lookup(packed []byte) (A, bool) {
	if i := t.Match(packed); i >= 0 {
		return t.actions[i], true
	}
	var zero A
	return zero, false
}

// MatchBatch classifies canonically packed keys (category 0), writing
// insertion indexes (or -1) to idx.
func (t *Table[A]) MatchBatch(keys [][]byte, idx []int) {
	s := t.scratch.Get().(*scratch)
	defer t.scratch.Put(s)
	stride := t.lay.Stride
	for start := 0; start < len(keys); start += MaxBatch {
		m := min(MaxBatch, len(keys)-start)
		for i := 0; i < m; i++ {
			t.lay.Pack(s.in[i*stride:], keys[start+i])
		}
		if err := t.ClassifyInput(s.in, m, s.res); err != nil {
			panic(err)
		}
		for i := 0; i < m; i++ {
			idx[start+i] = int(s.res[i*t.ccats]) - 1
		}
	}
}

// LookupBatch classifies canonically packed keys (category 0).
func (t *Table[A]) LookupBatch(keys [][]byte, acts []A, hits []bool) int {
	idx := make([]int, len(keys))
	t.MatchBatch(keys, idx)
	return t.fill(idx, acts, hits)
}

func (t *Table[A]) fill(idx []int, acts []A, hits []bool) int {
	n := 0
	var zero A
	for i, j := range idx {
		if j >= 0 {
			acts[i], hits[i] = t.actions[j], true
			n++
		} else {
			acts[i], hits[i] = zero, false
		}
	}
	return n
}

// Typed is an rte_acl table keyed by a tagged struct type K (see
// key.CodecOf). Keys are packed straight into the rte_acl input layout.
type Typed[K, A any] struct {
	*Table[A]
	codec *key.Codec[K]
}

// NewTyped builds a table whose schema comes from K's struct tags.
func NewTyped[K, A any](entries []key.Entry[A], o Options) (*Typed[K, A], error) {
	c, err := key.CodecOf[K]()
	if err != nil {
		return nil, err
	}
	t, err := New(c.Schema(), entries, o)
	if err != nil {
		return nil, err
	}
	placed, err := c.Placed(t.lay.Offsets, t.lay.Stride)
	if err != nil {
		t.Close()
		return nil, err
	}
	return &Typed[K, A]{Table: t, codec: placed}, nil
}

// Codec returns the codec that packs K into the rte_acl input layout.
func (t *Typed[K, A]) Codec() *key.Codec[K] { return t.codec }

// Lookup implements lookup.Lookup[K, A] (category 0).
func (t *Typed[K, A]) Lookup(k K) (A, bool) {
	s := t.scratch.Get().(*scratch)
	t.codec.Pack(s.in, &k)
	_ = t.ClassifyInput(s.in, 1, s.res)
	i := int(s.res[0]) - 1
	t.scratch.Put(s)
	if i >= 0 {
		return t.actions[i], true
	}
	var zero A
	return zero, false
}

// MatchKeys classifies keys (category 0) into insertion indexes (or -1),
// one cgo call per MaxBatch keys.
func (t *Typed[K, A]) MatchKeys(keys []K, idx []int32) {
	s := t.scratch.Get().(*scratch)
	stride := t.lay.Stride
	for start := 0; start < len(keys); start += MaxBatch {
		m := min(MaxBatch, len(keys)-start)
		for i := 0; i < m; i++ {
			t.codec.Pack(s.in[i*stride:], &keys[start+i])
		}
		_ = t.ClassifyInput(s.in, m, s.res)
		for i := 0; i < m; i++ {
			idx[start+i] = int32(s.res[i*t.ccats]) - 1
		}
	}
	t.scratch.Put(s)
}

// LookupBatch implements lookup.BatchLookup[K, A] (category 0).
func (t *Typed[K, A]) LookupBatch(keys []K, acts []A, hits []bool) int {
	s := t.scratch.Get().(*scratch)
	stride := t.lay.Stride
	n := 0
	var zero A
	for start := 0; start < len(keys); start += MaxBatch {
		m := min(MaxBatch, len(keys)-start)
		for i := 0; i < m; i++ {
			t.codec.Pack(s.in[i*stride:], &keys[start+i])
		}
		_ = t.ClassifyInput(s.in, m, s.res)
		for i := 0; i < m; i++ {
			if j := int(s.res[i*t.ccats]) - 1; j >= 0 {
				acts[start+i], hits[start+i] = t.actions[j], true
				n++
			} else {
				acts[start+i], hits[start+i] = zero, false
			}
		}
	}
	t.scratch.Put(s)
	return n
}
