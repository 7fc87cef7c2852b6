package main

import (
	"runtime"
	"time"
)

// cpuMeter measures the CPU this process uses over a span of wall time, so a run shows whether the
// generator itself, not the target, was the limit.
type cpuMeter struct {
	wall time.Time
	cpu  time.Duration
}

func startCPUMeter() cpuMeter {
	cpu, _ := processCPU()
	return cpuMeter{wall: time.Now(), cpu: cpu}
}

// stop returns the CPU used since start; zero where the platform cannot tell.
func (m cpuMeter) stop() cpuSummary {
	cpu, err := processCPU()
	s := cpuSummary{Cores: runtime.NumCPU()}
	if err != nil {
		return s
	}
	s.Seconds = (cpu - m.cpu).Seconds()
	if wall := time.Since(m.wall).Seconds(); wall > 0 {
		s.Percent = 100 * s.Seconds / wall
	}
	return s
}
