package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuMeter reads the CPU time used so far by this process and by the
// database server's processes (every process whose name is postgres,
// mariadbd or mysqld), so each phase can report where its CPU went.
type cpuMeter struct {
	self, server time.Duration
	// mallocs and allocBytes are this process's heap allocations (a measure
	// of its work that, unlike CPU time, does not grow with the machine's load).
	mallocs, allocBytes uint64
}

func readCPU() cpuMeter {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	self := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	var ticks int64
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(b)
		open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || closing < open {
			continue
		}
		switch s[open+1 : closing] {
		case "postgres", "mariadbd", "mysqld":
		default:
			continue
		}
		f := strings.Fields(s[closing+2:])
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64) // utime (field 14)
		k, _ := strconv.ParseInt(f[12], 10, 64) // stime (field 15)
		ticks += u + k
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return cpuMeter{self: self, server: time.Duration(ticks) * 10 * time.Millisecond, // USER_HZ = 100
		mallocs: ms.Mallocs, allocBytes: ms.TotalAlloc}
}

func (c cpuMeter) since(start cpuMeter) cpuMeter {
	return cpuMeter{self: c.self - start.self, server: c.server - start.server,
		mallocs: c.mallocs - start.mallocs, allocBytes: c.allocBytes - start.allocBytes}
}
