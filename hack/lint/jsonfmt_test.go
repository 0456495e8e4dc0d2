package lint

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// formatArg is the position of the format string of fmt's printf-style
// functions.
var formatArg = map[string]int{
	"Sprintf": 0, "Printf": 0, "Errorf": 0,
	"Fprintf": 1, "Appendf": 1,
}

// allowed lists "path:function" pairs that may still format JSON by hand.
// Every entry needs a TODO; the list should be empty.
var allowed = map[string]bool{}

func TestNoJSONFormatting(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor" || name == "bin") {
				return filepath.SkipDir
			}
			// Other modules (hack/tools, hack/image, ...) are not ours to lint here.
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil && path != root {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		for _, v := range jsonFormats(f) {
			if allowed[rel+":"+v.fn] {
				continue
			}
			t.Errorf("%s: fmt.%s builds JSON by hand in %s; use encoding/json (see hack/lint/doc.go)",
				fset.Position(v.pos), v.call, v.fn)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

type violation struct {
	pos  token.Pos
	call string // Sprintf, ...
	fn   string // enclosing function
}

// jsonFormats returns the fmt printf-style calls in f whose literal format
// string looks like JSON.
func jsonFormats(f *ast.File) []violation {
	fmtName := ""
	for _, imp := range f.Imports {
		if imp.Path.Value == `"fmt"` {
			fmtName = "fmt"
			if imp.Name != nil {
				fmtName = imp.Name.Name
			}
		}
	}
	if fmtName == "" || fmtName == "_" {
		return nil
	}
	var out []violation
	for _, decl := range f.Decls {
		fn := "(package level)"
		if fd, ok := decl.(*ast.FuncDecl); ok {
			fn = fd.Name.Name
		}
		ast.Inspect(decl, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); !ok || x.Name != fmtName {
				return true
			}
			i, ok := formatArg[sel.Sel.Name]
			if !ok || len(call.Args) <= i {
				return true
			}
			lit, ok := call.Args[i].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err == nil && looksLikeJSON(s) {
				out = append(out, violation{pos: call.Pos(), call: sel.Sel.Name, fn: fn})
			}
			return true
		})
	}
	return out
}

// looksLikeJSON reports whether a format string holds a JSON object: an
// opening brace followed by a quoted key, whitespace aside.
func looksLikeJSON(format string) bool {
	compact := strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, format)
	return strings.Contains(compact, `{"`)
}

func TestLooksLikeJSON(t *testing.T) {
	for format, want := range map[string]bool{
		`{"status":%s}`:                    true,
		`[{"op":"add","path":%q}]`:         true,
		"{\n  \"cniVersion\": %q\n}":       true,
		`{"metadata":{"finalizers":null}}`: true,
		`pool %q: %v`:                      false,
		`map{%s}`:                          false,
		`%s{%d}`:                           false,
		`apiVersion: v1\nkind: Config\n%s`: false,
	} {
		if got := looksLikeJSON(format); got != want {
			t.Errorf("looksLikeJSON(%q) = %v, want %v", format, got, want)
		}
	}
}

func TestJSONFormatsFindsCalls(t *testing.T) {
	src := `package p
import f "fmt"
func bad(x string) string { return f.Sprintf(` + "`" + `{"a": %q}` + "`" + `, x) }
func good(x string) string { return f.Sprintf("a=%q", x) }
`
	file, err := parser.ParseFile(token.NewFileSet(), "p.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := jsonFormats(file)
	if len(got) != 1 || got[0].fn != "bad" || got[0].call != "Sprintf" {
		t.Fatalf("jsonFormats = %+v, want one Sprintf in bad", got)
	}
}
