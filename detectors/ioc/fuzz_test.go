package ioc

import (
	"testing"
)

// The parsers take files from outside: any input gets indicators or an
// *Error, never a panic, and every indicator they return is normal.
func checkParsed(t *testing.T, inds []Indicator, err error) {
	if err != nil {
		if _, ok := err.(*Error); !ok {
			t.Fatalf("error %T %v, want *Error", err, err)
		}
		return
	}
	if len(inds) == 0 {
		t.Fatal("no error and no indicators")
	}
	if _, err := NewMatcher("fuzz", inds); err != nil {
		t.Fatalf("parsed indicators do not load: %v", err)
	}
	for _, ind := range inds {
		n, err := Normalize(ind)
		if err != nil || n != ind {
			t.Fatalf("indicator %+v is not normal: %+v, %v", ind, n, err)
		}
	}
}

func FuzzParseCSV(f *testing.F) {
	f.Add([]byte("type,value,severity,note\nsha256," + hashA + ",high,x\nip,10.0.0.1,,\n"))
	f.Add([]byte("type,value\ncidr,::ffff:10.0.0.0/104\n"))
	f.Add([]byte("type,value,severity,note\npath,\"/tmp/a,b\",low,\"n\"\"q\"\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		inds, err := ParseCSV(b)
		checkParsed(t, inds, err)
	})
}

func FuzzParseSTIX(f *testing.F) {
	f.Add([]byte(bundle))
	f.Add([]byte(`{"type":"bundle","objects":[{"type":"indicator","id":"indicator--1","pattern":"[file:name = 'a\\'b']"}]}`))
	f.Add([]byte(`{"type":"bundle","objects":[{"type":"indicator","pattern":"[ipv6-addr:value = '::ffff:1.2.3.4/128']"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		inds, err := ParseSTIX(b)
		checkParsed(t, inds, err)
	})
}
