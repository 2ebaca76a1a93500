// Command payload is what the stress test runs in its guests: it says it ran
// and exits 0, so a run that is not killed passes.
package main

import "fmt"

func main() { fmt.Println("stress payload ran") }
