package lab

import (
	"os"
	"testing"
)

func TestReadProcStat(t *testing.T) {
	st, err := ReadProcStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.PPID != os.Getppid() {
		t.Errorf("PPID = %d, want %d", st.PPID, os.Getppid())
	}
	if st.State == 'Z' || st.Comm == "" || st.Start == 0 {
		t.Errorf("implausible stat of a running test: %+v", st)
	}
	// A Go test binary holds at least a few MiB resident.
	if st.RSS < 1<<20 {
		t.Errorf("RSS = %d bytes, want >= 1 MiB", st.RSS)
	}
	if _, err := ReadProcStat(-1); err == nil {
		t.Error("ReadProcStat(-1) succeeded")
	}
}
