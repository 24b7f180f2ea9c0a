package sensor

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    statInfo
		wantErr bool
	}{
		{
			name: "plain",
			in:   "4242 (bash) S 100 4242 4242 34816 4242 4194560 1 2 3 4 5 6 7 8 20 0 1 0 123456 1000 200 18446744073709551615\n",
			want: statInfo{comm: "bash", ppid: 100, startTicks: 123456},
		},
		{
			name: "comm with spaces and parentheses",
			in:   "7 ((sd-pam) x) y) R 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0",
			want: statInfo{comm: "(sd-pam) x) y", ppid: 1, startTicks: 99},
		},
		{
			name: "empty comm",
			in:   "8 () S 2 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 18446744073709551615",
			want: statInfo{comm: "", ppid: 2, startTicks: 18446744073709551615},
		},
		{name: "no parentheses", in: "1 init S 0 1 1", wantErr: true},
		{name: "closing before opening", in: "1 )init( S 0 1 1", wantErr: true},
		{name: "too few fields", in: "1 (init) S 0 1 1 0 -1", wantErr: true},
		{name: "bad ppid", in: "1 (init) S x 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5", wantErr: true},
		{name: "bad starttime", in: "1 (init) S 0 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 -5", wantErr: true},
		{name: "empty", in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseStat() error = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Errorf("parseStat() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseStatusUID(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr bool
	}{
		{
			name: "setuid",
			in:   "Name:\tsudo\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t1000\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\n",
			want: "0",
		},
		{name: "last line without newline", in: "Name:\tx\nUid:\t0\t1001\t0\t0", want: "1001"},
		{name: "no uid line", in: "Name:\tx\nGid:\t0\t0\t0\t0\n", wantErr: true},
		{name: "short uid line", in: "Uid:\t1000\n", wantErr: true},
		{name: "not a number", in: "Uid:\t1000\tabc\t0\t0\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatusUID([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseStatusUID() error = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("parseStatusUID() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseCmdline(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{name: "args", in: "/bin/sh\x00-c\x00echo hi\x00", want: []string{"/bin/sh", "-c", "echo hi"}},
		{name: "empty arg kept", in: "a\x00\x00b\x00", want: []string{"a", "", "b"}},
		{name: "rewritten without NULs", in: "postgres: checkpointer", want: []string{"postgres: checkpointer"}},
		{name: "kernel thread", in: "", want: nil},
		{name: "single NUL", in: "\x00", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseCmdline([]byte(tt.in)); !slices.Equal(got, tt.want) {
				t.Errorf("parseCmdline() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseBootTime(t *testing.T) {
	got, err := parseBootTime([]byte("cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Unix(1700000000, 0).UTC(); !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("parseBootTime() = %v, want %v", got, want)
	}
	if _, err := parseBootTime([]byte("cpu 1\n")); err == nil {
		t.Error("parseBootTime() without btime: want error")
	}
	if _, err := parseBootTime([]byte("btime x\n")); err == nil {
		t.Error("parseBootTime() with bad btime: want error")
	}
}

func TestProcfsRead(t *testing.T) {
	fs := newProcfs("testdata/proc")
	tests := []struct {
		name     string
		pid      int
		want     procInfo
		wantGone bool
		wantErr  bool
	}{
		{
			name: "live process",
			pid:  4242,
			want: procInfo{
				pid:    4242,
				exe:    "/usr/bin/python3.12",
				args:   []string{"python3", "-c", `print("a b")`},
				cwd:    "/home/alice",
				stat:   statInfo{comm: "(my) (weird) name", ppid: 100, startTicks: 123456},
				statOK: true,
				uid:    "0",
			},
		},
		{
			name:     "exited, not reaped",
			pid:      4300,
			want:     procInfo{pid: 4300, stat: statInfo{comm: "short", ppid: 100, startTicks: 123500}, statOK: true, uid: "1000"},
			wantGone: true,
		},
		{
			name:     "reaped",
			pid:      9999,
			want:     procInfo{pid: 9999},
			wantGone: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := fs.read(tt.pid)
			if gone := errors.Is(err, errGone); gone != tt.wantGone {
				t.Errorf("read() error = %v, want gone %v", err, tt.wantGone)
			}
			if got.pid != tt.want.pid || got.exe != tt.want.exe || !slices.Equal(got.args, tt.want.args) ||
				got.cwd != tt.want.cwd || got.stat != tt.want.stat || got.statOK != tt.want.statOK || got.uid != tt.want.uid {
				t.Errorf("read() = %+v, want %+v", got, tt.want)
			}
		})
	}

	pids, err := fs.pids()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(pids)
	if want := []int{1, 2, 100, 4242, 4300}; !slices.Equal(pids, want) {
		t.Errorf("pids() = %v, want %v", pids, want)
	}
	if id, err := fs.bootID(); err != nil || id != "b0071d00-0000-4000-8000-000000000001" {
		t.Errorf("bootID() = %q, %v", id, err)
	}
	if bt, err := fs.bootTime(); err != nil || bt.Unix() != 1700000000 {
		t.Errorf("bootTime() = %v, %v", bt, err)
	}
	if _, err := newProcfs("testdata/none").bootID(); err == nil {
		t.Error("bootID() of a missing tree: want error")
	}
}

func TestTicksToTime(t *testing.T) {
	boot := time.Unix(1700000000, 0)
	if got, want := ticksToTime(boot, 123456), time.Unix(1700001234, 560_000_000).UTC(); !got.Equal(want) {
		t.Errorf("ticksToTime() = %v, want %v", got, want)
	}
}
