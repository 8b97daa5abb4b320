package opcua

import (
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
