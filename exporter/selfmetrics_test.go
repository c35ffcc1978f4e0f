package exporter

import "testing"

func TestPeakRSSReadsVmHWM(t *testing.T) {
	tests := []struct {
		name   string
		status string
		want   int64
		ok     bool
	}{
		{"VmHWM in kB gives bytes", "Name:\tslipstream\nVmPeak:\t  1261560 kB\nVmHWM:\t    18432 kB\nVmRSS:\t    17000 kB\n", 18432 << 10, true},
		{"a status without VmHWM gives nothing", "Name:\tslipstream\nVmRSS:\t 17000 kB\n", 0, false},
		{"a VmHWM in another unit gives nothing", "VmHWM:\t 18 MB\n", 0, false},
		{"a VmHWM that is not a number gives nothing", "VmHWM:\t lots kB\n", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := peakRSS([]byte(tt.status))
			if got != tt.want || ok != tt.ok {
				t.Errorf("peakRSS = %d, %v; want %d, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}
