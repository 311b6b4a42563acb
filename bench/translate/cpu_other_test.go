//go:build !unix

package translatebench

import "time"

// processCPU is not measured outside Unix; cpu-ms/op then reads 0.
func processCPU() time.Duration { return 0 }
