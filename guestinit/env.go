package guestinit

import (
	"sort"
	"strings"
)

// EnvMarker is the environment variable set to "1" for every test run by
// this init, so a test can tell it runs inside a guest. The config cannot
// override it.
const EnvMarker = "IN_VM"

// DefaultEnv is the clean environment of the test before the config's Env
// entries are applied.
var DefaultEnv = []string{
	EnvMarker + "=1",
	"PATH=/bin:/sbin:/usr/bin:/usr/sbin",
	"TMPDIR=/tmp",
	"HOME=/tmp",
}

// TestEnv returns the test's environment: DefaultEnv, overridden by extra
// ("NAME=value" entries, later ones win), with EnvMarker forced to "1".
// The result is sorted by name and has no duplicates.
func TestEnv(extra []string) []string {
	m := map[string]string{}
	for _, list := range [][]string{DefaultEnv, extra} {
		for _, kv := range list {
			name, value, ok := strings.Cut(kv, "=")
			if !ok || name == "" {
				continue
			}
			m[name] = value
		}
	}
	m[EnvMarker] = "1"
	env := make([]string, 0, len(m))
	for name, value := range m {
		env = append(env, name+"="+value)
	}
	sort.Strings(env)
	return env
}
