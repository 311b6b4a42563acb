// Command rosen is the Rosen service-mesh control plane in one binary.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		// Commands print their own detailed errors; this is the summary line.
		fmt.Fprintln(os.Stderr, "rosen:", err)
		os.Exit(exitCode(err))
	}
}
