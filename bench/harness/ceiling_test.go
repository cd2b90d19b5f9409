package main

import (
	"bytes"
	"go/ast"
	"go/parser"
	goprinter "go/printer"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestServerOptionsMatchServer keeps the ceiling's copy of MetaStore's gRPC
// server options (ceiling.go) equal to the server's own, read from the
// server's source: the ceiling means "MetaStore's transport, no storage"
// only while they are the same. Comments and layout do not count.
func TestServerOptionsMatchServer(t *testing.T) {
	server := decls(t, "../../rpc/server.go", "../../rpc/config.go")
	harness := decls(t, "ceiling.go")
	for _, p := range []struct{ server, harness string }{
		{"serverOptions", "serverOptions"},
		{"grpcOverheadBytes", "grpcOverheadBytes"},
		{"DefaultMaxRequestBytes", "defaultMaxRequestBytes"},
	} {
		s, ok := server[p.server]
		if !ok {
			t.Errorf("rpc: no %s; update the ceiling's copy in ceiling.go and this test", p.server)
			continue
		}
		if h := harness[p.harness]; s != h {
			t.Errorf("ceiling.go's %s differs from rpc's %s, copy it again:\n rpc:     %s\n harness: %s", p.harness, p.server, s, h)
		}
	}
}

// decls maps the top-level functions and constants of the files to their
// source text without comments, white space collapsed: a function to its
// body, a constant to its value.
func decls(t *testing.T, paths ...string) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	text := func(n ast.Node) string {
		var b bytes.Buffer
		if err := goprinter.Fprint(&b, fset, n); err != nil {
			t.Fatal(err)
		}
		return strings.Join(strings.Fields(b.String()), " ")
	}
	out := map[string]string{}
	for _, p := range paths {
		f, err := parser.ParseFile(fset, filepath.FromSlash(p), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil {
					out[d.Name.Name] = text(d.Body)
				}
			case *ast.GenDecl:
				if d.Tok != token.CONST {
					continue
				}
				for _, s := range d.Specs {
					vs := s.(*ast.ValueSpec)
					for i, n := range vs.Names {
						if i < len(vs.Values) {
							out[n.Name] = text(vs.Values[i])
						}
					}
				}
			}
		}
	}
	return out
}
