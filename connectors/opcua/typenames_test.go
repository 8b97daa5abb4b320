package opcua

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
)

// TestTypeNamesMatchLibrary checks that every DataType name plcwatch
// records is the one gopcua's id.Name gave before the table replaced it,
// so stored snapshots keep comparing equal, and that no other id of
// namespace 0 gets a name.
func TestTypeNamesMatchLibrary(t *testing.T) {
	for i, e := range dataTypeNames {
		if i > 0 && dataTypeNames[i-1].id >= e.id {
			t.Fatalf("dataTypeNames not in ascending id order at %d", e.id)
		}
		if got := id.Name(e.id); got != e.name {
			t.Errorf("DataType i=%d: table says %q, id.Name %q", e.id, e.name, got)
		}
	}
	for _, tc := range []struct {
		name string
		id   uint32
		want string
	}{
		{name: "first built-in type", id: id.Boolean, want: "Boolean"},
		{name: "last built-in type", id: id.DiagnosticInfo, want: "DiagnosticInfo"},
		{name: "spelled as gopcua spells it", id: id.GUID, want: "GUID"},
		{name: "abstract", id: id.BaseDataType, want: "BaseDataType"},
		{name: "derived", id: id.Duration, want: "Duration"},
		{name: "enumeration", id: id.ServerState, want: "ServerState"},
		{name: "structure", id: id.EUInformation, want: "EUInformation"},
		{name: "last in the table", id: dataTypeNames[len(dataTypeNames)-1].id, want: dataTypeNames[len(dataTypeNames)-1].name},
		{name: "an object is no DataType", id: id.Server, want: ""},
		{name: "a variable is no DataType", id: id.Server_ServerStatus_State, want: ""},
		{name: "zero", id: 0, want: ""},
		{name: "beyond the table", id: 1 << 31, want: ""},
	} {
		if got := typeName(tc.id); got != tc.want {
			t.Errorf("%s: typeName(%d) = %q, want %q", tc.name, tc.id, got, tc.want)
		}
	}
	uris := []string{"http://opcfoundation.org/UA/"}
	for _, tc := range []struct {
		name string
		v    *ua.Variant
		want string
	}{
		{name: "standard type by name", v: ua.MustVariant(ua.NewNumericNodeID(0, id.Double)), want: "Double"},
		{name: "unknown namespace 0 id kept as id", v: ua.MustVariant(ua.NewNumericNodeID(0, id.Server)), want: "i=2253"},
	} {
		if got := dataTypeName(tc.v, uris); got != tc.want {
			t.Errorf("%s: dataTypeName = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestNoLibraryNameMaps fails when code that goes into the plcwatch binary
// calls gopcua's id.Name: the linker then keeps that package's maps of
// every node of namespace 0, which every process start fills (about 2 ms
// of each `plcwatch diff` on 2 cores). Tests may call it.
func TestNoLibraryNameMaps(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == "testdata" || n == "node_modules" || (strings.HasPrefix(n, ".") && p != root) {
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
		local := ""
		for _, imp := range f.Imports {
			if imp.Path.Value == `"github.com/gopcua/opcua/id"` {
				local = "id"
				if imp.Name != nil {
					local = imp.Name.Name
				}
			}
		}
		if local == "" {
			return nil
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "Name" {
				if x, ok := sel.X.(*ast.Ident); ok && x.Name == local {
					t.Errorf("%s: calls gopcua's id.Name; use typeName (connectors/opcua/typenames.go)", fset.Position(sel.Pos()))
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
