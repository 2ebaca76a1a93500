package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestParsePC(t *testing.T) {
	for _, tc := range []struct {
		regs string
		want uint64
		ok   bool
	}{
		{"RAX=0000000000000000 RBX=1\nRIP=ffffffff81af2b20 RFL=00000046", 0xffffffff81af2b20, true},
		{" PC=ffff800080010000 X00=0000000000000000", 0xffff800080010000, true},
		{"CPU#0\r\nEAX=ffffffff\r\nEIP=000f09dc EFL=00000006", 0xf09dc, true},
		{"XRIP=12 no program counter here", 0, false},
		{"", 0, false},
	} {
		got, err := parsePC(tc.regs)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parsePC(%q) = %#x, %v; want %#x, ok %v", tc.regs, got, err, tc.want, tc.ok)
		}
	}
}

func TestSymtabName(t *testing.T) {
	st := symtab{addrs: []uint64{0xffffffff81000000, 0xffffffff81000100}, names: []string{"_stext", "do_work"}}
	for _, tc := range []struct {
		pc   uint64
		want string
	}{
		{0x401000, "user/firmware"},
		{0xffffffff80000000, "0xffffffff80000000"},
		{0xffffffff81000000, "_stext"},
		{0xffffffff810000ff, "_stext"},
		{0xffffffff81000100, "do_work"},
		{0xffffffff81ffffff, "do_work"},
	} {
		if got := st.name(tc.pc); got != tc.want {
			t.Errorf("name(%#x) = %q, want %q", tc.pc, got, tc.want)
		}
	}
}

func TestReport(t *testing.T) {
	ms := time.Millisecond
	samples := []sample{{0, "a"}, {10 * ms, "b"}, {20 * ms, "b"}, {110 * ms, "c"}, {120 * ms, "c"}, {130 * ms, "b"}}
	var out bytes.Buffer
	report(&out, samples, 2, 100*ms)
	want := strings.Join([]string{
		"6 samples",
		"    3  50.0%  b",
		"    2  33.3%  c",
		"timeline (bucket start: samples, top functions)",
		"  0.00s   3  b 2, a 1",
		"  0.10s   3  c 2, b 1",
		"",
	}, "\n")
	if out.String() != want {
		t.Errorf("report:\n%s\nwant:\n%s", out.String(), want)
	}
}
