package runner

import (
	"bytes"
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// launchTestGrace is a grace no healthy run in these tests comes near.
const launchTestGrace = time.Minute

func TestLaunch(t *testing.T) {
	for _, tc := range []struct {
		name   string
		signal bool
		grace  time.Duration
		run    func(ctx context.Context, release <-chan struct{}) int
		want   int
		log    string
	}{
		{"code", false, launchTestGrace, func(context.Context, <-chan struct{}) int { return 3 }, 3, ""},
		{"panic", false, launchTestGrace, func(context.Context, <-chan struct{}) int { panic("oops") }, ExitInternal, "panic: oops"},
		{"signal, then the run ends", true, launchTestGrace, func(ctx context.Context, _ <-chan struct{}) int {
			<-ctx.Done()
			if !strings.Contains(context.Cause(ctx).Error(), "terminated") {
				return 99
			}
			return ExitTimeout
		}, ExitTimeout, "terminated: shutting down"},
		{"signal, the run overruns", true, 10 * time.Millisecond, func(_ context.Context, release <-chan struct{}) int {
			<-release
			return 0
		}, ExitTimeout, "did not end within 10ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sigs := make(chan os.Signal, 1)
			if tc.signal {
				sigs <- syscall.SIGTERM
			}
			release := make(chan struct{})
			defer close(release)
			var log bytes.Buffer
			got := Launch(sigs, tc.grace, &log, func(ctx context.Context) int { return tc.run(ctx, release) })
			if got != tc.want || !strings.Contains(log.String(), tc.log) {
				t.Errorf("Launch = %d, log %q; want %d, a log with %q", got, log.String(), tc.want, tc.log)
			}
		})
	}
}
