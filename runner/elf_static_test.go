package runner

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckStatic(t *testing.T) {
	// /bin/sh is a dynamically linked executable on every Debian system.
	err := CheckStatic("/bin/sh")
	if !errors.Is(err, ErrDynamicBinary) || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
		t.Errorf("CheckStatic(/bin/sh) = %v, want ErrDynamicBinary naming the fix", err)
	}
	notELF := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := CheckStatic(notELF); !errors.Is(err, ErrUnsupportedBinary) {
		t.Errorf("CheckStatic(script) = %v, want ErrUnsupportedBinary", err)
	}
}
