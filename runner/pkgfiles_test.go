package runner

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/rules-go-vm/rules_go_vm/protocol"
)

func TestPackageDirFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, size int) {
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a_test.go", 10)
	write("b.go", 20)
	write(".hidden", 1)
	write("big.bin", MaxPackageFileSize+1)
	write("x.test", 30) // the test binary
	if err := os.MkdirAll(filepath.Join(dir, "testdata"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	files, skipped, err := PackageDirFiles(dir, filepath.Join(dir, "x.test"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "a_test.go"), filepath.Join(dir, "b.go")}
	if !reflect.DeepEqual(files, want) {
		t.Errorf("files = %q, want %q", files, want)
	}
	if len(skipped) != 1 || !strings.HasPrefix(skipped[0], "big.bin ") {
		t.Errorf("skipped = %q, want big.bin alone", skipped)
	}
}

func TestPackageDirFilesTotal(t *testing.T) {
	dir := t.TempDir()
	n := MaxPackageFilesTotal/MaxPackageFileSize + 2
	for i := 0; i < n; i++ {
		if err := os.WriteFile(filepath.Join(dir, string(rune('a'+i))+".dat"), make([]byte, MaxPackageFileSize), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files, skipped, err := PackageDirFiles(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != MaxPackageFilesTotal/MaxPackageFileSize || len(skipped) != n-len(files) {
		t.Errorf("%d files, %d skipped; want %d and %d", len(files), len(skipped), MaxPackageFilesTotal/MaxPackageFileSize, n-MaxPackageFilesTotal/MaxPackageFileSize)
	}
}

// TestTestLayerHasPackageFiles: the one test layer (a cold boot's initrd
// part and a restore's layer message) carries the package files next to
// the test.
func TestTestLayerHasPackageFiles(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "own_test.go")
	if err := os.WriteFile(src, []byte("package p"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := Options{TestBinary: "/b/x.test", PackageFiles: []string{src}}.WithDefaults()
	cfg := guestConfig(o, o.shape(), protocol.DefaultChannel(), "tcg", 0, nil)
	o.TestBinary = "" // the layer's binary is not what this test is about
	l, err := testLayer(o, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.TrimPrefix(GuestDir, "/") + "/own_test.go"
	if paths := l.Paths(); !slices.Contains(paths, want) {
		t.Errorf("test layer paths %q lack %q", paths, want)
	}
}
