package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoPackageLevelRegexp fails when code of the plcwatch binary compiles
// a regular expression at package level (a var initializer or an init
// function): every process start, `plcwatch version` included, would pay
// for it (0.02 to 0.1 ms each on 2 cores). Compile it where it is used,
// lazily (sync.OnceValue), or write the test as plain code. Commands under
// internal/ are separate tools, and tests may do as they like.
func TestNoPackageLevelRegexp(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	found := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == "testdata" || n == "node_modules" || (strings.HasPrefix(n, ".") && p != root) || p == filepath.Join(root, "internal") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		found++
		local := ""
		for _, imp := range f.Imports {
			if imp.Path.Value == `"regexp"` {
				local = "regexp"
				if imp.Name != nil {
					local = imp.Name.Name
				}
			}
		}
		if local == "" {
			return nil
		}
		for _, n := range packageLevelCode(f) {
			ast.Inspect(n, func(n ast.Node) bool {
				if _, ok := n.(*ast.FuncLit); ok {
					return false // runs when called, not at start
				}
				if call, ok := n.(*ast.CallExpr); ok {
					if sel, ok := call.Fun.(*ast.SelectorExpr); ok {
						if x, ok := sel.X.(*ast.Ident); ok && x.Name == local && strings.Contains(sel.Sel.Name, "Compile") {
							t.Errorf("%s: regexp.%s runs at every process start; compile it lazily (sync.OnceValue) or use plain code", fset.Position(call.Pos()), sel.Sel.Name)
						}
					}
				}
				return true
			})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found < 50 {
		t.Fatalf("scanned %d Go files under %s: not the module's root?", found, root)
	}
}

// packageLevelCode returns what runs when f's package is initialized: the
// values of its package-level vars and the bodies of its init functions.
func packageLevelCode(f *ast.File) []ast.Node {
	var out []ast.Node
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.GenDecl:
			if d.Tok != token.VAR {
				continue
			}
			for _, s := range d.Specs {
				for _, v := range s.(*ast.ValueSpec).Values {
					out = append(out, v)
				}
			}
		case *ast.FuncDecl:
			if d.Recv == nil && d.Name.Name == "init" && d.Body != nil {
				out = append(out, d.Body)
			}
		}
	}
	return out
}
