// Command specgen writes the Starlark files generated from package vmspec
// (see package specgen) into the workspace given by -workspace (default:
// the current directory).
//
//	go run ./vmspec/cmd/specgen
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/rules-go-vm/rules_go_vm/vmspec/specgen"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "specgen:", err)
		os.Exit(1)
	}
}

func run() error {
	ws := flag.String("workspace", ".", "the rules_go_vm source tree")
	flag.Parse()
	var paths []string
	for p := range specgen.Files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		b, err := specgen.Files[p]()
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(*ws, p), b, 0o644); err != nil {
			return err
		}
		fmt.Println("wrote", p)
	}
	return nil
}
