package main

import (
	"testing"
	"time"

	"github.com/rules-go-vm/rules_go_vm/protocol"
	"github.com/rules-go-vm/rules_go_vm/runner"
)

// TestParseTimings: -compare-invm reads back what runner.Result.Timings
// prints.
func TestParseTimings(t *testing.T) {
	v := &protocol.Verdict{Pass: true}
	v.Timings.Boot, v.Timings.Setup, v.Timings.Test, v.Timings.Teardown = 412*time.Millisecond, 31*time.Millisecond, 5*time.Millisecond, 2*time.Millisecond
	for _, tbs := range []int64{0, 123456} {
		in := runner.Result{VM: 780 * time.Millisecond, AfterVerdict: 21 * time.Millisecond, Total: 900 * time.Millisecond, Verdict: v, Translations: tbs}
		var got runner.Result
		if err := parseTimings("invm: accelerator tcg\ninvm: timings: "+in.Timings()+"\n", &got); err != nil {
			t.Fatal(err)
		}
		if got.VM != in.VM || got.AfterVerdict != in.AfterVerdict || got.Verdict.Timings != v.Timings || got.Translations != tbs {
			t.Errorf("parsed VM %v, after verdict %v, timings %+v, %d TBs; want %v, %v, %+v, %d",
				got.VM, got.AfterVerdict, got.Verdict.Timings, got.Translations, in.VM, in.AfterVerdict, v.Timings, tbs)
		}
	}
	if err := parseTimings("invm: timings: host boot 0s, VM 0s, after verdict 0s, total 1s; no verdict", &runner.Result{}); err == nil {
		t.Errorf("a line without a verdict parsed")
	}
}
