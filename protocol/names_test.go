package protocol

import (
	"regexp"
	"testing"
)

// The hand-written name checks of config.go must accept exactly what the
// regular expressions they replace accept.
var nameChecks = []struct {
	name  string
	check func(string) bool
	re    *regexp.Regexp
}{
	{"validHugeSize", validHugeSize, regexp.MustCompile(`^[1-9][0-9]*[KMG]$`)},
	{"validHostname", validHostname, regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$`)},
	{"validEnvName", validEnvName, regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)},
}

func TestNameChecksMatchRegexps(t *testing.T) {
	long := "a123456789b123456789c123456789d123456789e123456789f123456789ghi"
	inputs := []string{
		"", "2M", "1G", "64K", "0M", "02M", "2", "M", "2m", "2MB", "12345M", "1 G", "2M\n",
		"vm", "a", "-a", "a-", "a.b-c", ".a", "A9", "a_b", "é", long, long + "j", "host name",
		"PATH", "_", "_x1", "1X", "X-Y", "GODEBUG", "a=b", "x\x00",
	}
	for _, c := range nameChecks {
		for _, in := range inputs {
			if got, want := c.check(in), c.re.MatchString(in); got != want {
				t.Errorf("%s(%q) = %v, the regexp says %v", c.name, in, got, want)
			}
		}
	}
}

func FuzzNameChecks(f *testing.F) {
	for _, s := range []string{"2M", "vm.local", "GO_ENV", "", "9", "a-b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		for _, c := range nameChecks {
			if got, want := c.check(in), c.re.MatchString(in); got != want {
				t.Errorf("%s(%q) = %v, the regexp says %v", c.name, in, got, want)
			}
		}
	})
}
