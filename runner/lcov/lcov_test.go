package lcov

import (
	"errors"
	"strings"
	"testing"
)

func TestMerge(t *testing.T) {
	for _, tc := range []struct {
		name   string
		inputs []string
		want   string
	}{
		{
			name:   "one file",
			inputs: []string{"SF:a.go\nDA:3,1\nDA:1,0\nLH:1\nLF:2\nend_of_record\n"},
			want:   "SF:a.go\nDA:1,0\nDA:3,1\nLH:1\nLF:2\nend_of_record\n",
		},
		{
			name: "two reports of one file sum, others kept",
			inputs: []string{
				"TN:\nSF:a.go\nDA:1,0\nDA:2,2\nend_of_record\nSF:b.go\nDA:7,1\nend_of_record\n",
				"SF:a.go\nDA:1,1\nDA:2,0\nDA:4,0,abcd\nend_of_record\n",
			},
			want: "SF:a.go\nDA:1,1\nDA:2,2\nDA:4,0\nLH:2\nLF:3\nend_of_record\nSF:b.go\nDA:7,1\nLH:1\nLF:1\nend_of_record\n",
		},
		{
			name: "functions and branches",
			inputs: []string{
				"SF:c.cc\nFN:3,f\nFN:9,g\nFNDA:1,f\nFNDA:0,g\nBRDA:4,0,0,1\nBRDA:4,0,1,-\nDA:3,1\nend_of_record\n",
				"SF:c.cc\nFN:3,5,f\nFNDA:2,f\nBRDA:4,0,1,3\nBRDA:4,0,0,-\nend_of_record\n",
			},
			want: "SF:c.cc\nFN:3,f\nFN:9,g\nFNDA:3,f\nFNDA:0,g\nFNF:2\nFNH:1\nBRDA:4,0,0,1\nBRDA:4,0,1,3\nBRF:2\nBRH:2\nDA:3,1\nLH:1\nLF:1\nend_of_record\n",
		},
		{
			name:   "a file without lines (a baseline)",
			inputs: []string{"SF:d.go\nend_of_record\n"},
			want:   "SF:d.go\nLH:0\nLF:0\nend_of_record\n",
		},
		{name: "empty", inputs: []string{""}, want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r Report
			for i, in := range tc.inputs {
				if err := r.Read(strings.NewReader(in), "in"+string(rune('0'+i))); err != nil {
					t.Fatal(err)
				}
			}
			var out strings.Builder
			if err := r.Write(&out); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("got\n%s\nwant\n%s", out.String(), tc.want)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"SF:a\nDA:x,1\n", `x.dat:2: "DA:x,1"`},
		{"SF:a\nDA:1\n", "want DA:line,hits"},
		{"SF:a\nDA:1,-2\n", "not a count"},
		{"SF:a\nFNDA:1\n", "want FNDA:hits,name"},
		{"SF:a\nBRDA:1,2,3\n", "want BRDA"},
		{"SF:a\nFN:x,f\n", "FN:x,f"},
	} {
		var r Report
		err := r.Read(strings.NewReader(tc.in), "x.dat")
		if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Read(%q) = %v, want ErrSyntax with %q", tc.in, err, tc.want)
		}
	}
}

func TestFilter(t *testing.T) {
	var r Report
	if err := r.Read(strings.NewReader("SF:a.go\nDA:1,1\nend_of_record\nSF:/usr/lib/x.h\nDA:1,1\nend_of_record\n"), "in"); err != nil {
		t.Fatal(err)
	}
	r.Filter(func(n string) bool { return !strings.HasPrefix(n, "/usr/") })
	if got := r.Files(); len(got) != 1 || got[0] != "a.go" || r.Lines("a.go")[1] != 1 || r.Lines("b.go") != nil {
		t.Errorf("files %q, lines %v", got, r.Lines("a.go"))
	}
}
