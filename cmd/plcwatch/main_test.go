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

// binaryFiles parses every non-test Go file of the module that goes into
// the plcwatch binary (commands under internal/ are separate tools) and
// calls check with each file and the name under which it imports pkg
// ("" when it does not).
func binaryFiles(t *testing.T, pkg string, check func(fset *token.FileSet, f *ast.File, local string)) {
	t.Helper()
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
			if imp.Path.Value == `"`+pkg+`"` {
				local = pkg[strings.LastIndex(pkg, "/")+1:]
				if imp.Name != nil {
					local = imp.Name.Name
				}
			}
		}
		check(fset, f, local)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found < 50 {
		t.Fatalf("scanned %d Go files under %s: not the module's root?", found, root)
	}
}

// TestNoPackageLevelRegexp fails when code of the plcwatch binary compiles
// a regular expression at package level (a var initializer or an init
// function): every process start, `plcwatch version` included, would pay
// for it (0.02 to 0.1 ms each on 2 cores). Compile it where it is used,
// lazily (sync.OnceValue). Tests may do as they like.
func TestNoPackageLevelRegexp(t *testing.T) {
	binaryFiles(t, "regexp", func(fset *token.FileSet, f *ast.File, local string) {
		if local == "" {
			return
		}
		for _, n := range packageLevelCode(f) {
			ast.Inspect(n, func(n ast.Node) bool {
				if _, ok := n.(*ast.FuncLit); ok {
					return false // runs when called, not at start
				}
				if call, ok := n.(*ast.CallExpr); ok {
					if sel, ok := call.Fun.(*ast.SelectorExpr); ok {
						if x, ok := sel.X.(*ast.Ident); ok && x.Name == local && strings.Contains(sel.Sel.Name, "Compile") {
							t.Errorf("%s: regexp.%s runs at every process start; compile it lazily (sync.OnceValue)", fset.Position(call.Pos()), sel.Sel.Name)
						}
					}
				}
				return true
			})
		}
	})
}

// TestNoLibraryNameMaps fails when code of the plcwatch binary calls
// gopcua's id.Name: the linker then keeps that package's maps of every node
// of namespace 0, which every process start fills (about 2 ms of each
// `plcwatch diff` on 2 cores). connectors/opcua's typeName names DataTypes
// instead.
func TestNoLibraryNameMaps(t *testing.T) {
	binaryFiles(t, "github.com/gopcua/opcua/id", func(fset *token.FileSet, f *ast.File, local string) {
		if local == "" {
			return
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "Name" {
				if x, ok := sel.X.(*ast.Ident); ok && x.Name == local {
					t.Errorf("%s: calls gopcua's id.Name; use typeName (connectors/opcua/typenames.go)", fset.Position(sel.Pos()))
				}
			}
			return true
		})
	})
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
