// Package metallbapi compares bgplb's mirror of MetalLB's API with MetalLB's
// own types, field by field, so `bgplb migrate metallb` reads every field a
// user may set.
package metallbapi

import (
	"reflect"
	"strings"
	"testing"

	"go.universe.tf/metallb/api/v1beta1"
	"go.universe.tf/metallb/api/v1beta2"

	"github.com/bgplb/bgplb/internal/migrate/metallb"
)

// shape describes a type by its JSON: field names and, recursively, their
// shapes; types outside MetalLB's API (metav1, core/v1) by their kind only,
// except structs, which are compared too.
func shape(t reflect.Type, depth int) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice:
		return "[]" + shape(t.Elem(), depth)
	case reflect.Map:
		return "map[" + t.Key().Kind().String() + "]" + shape(t.Elem(), depth)
	case reflect.Struct:
		if t.PkgPath() == "k8s.io/apimachinery/pkg/apis/meta/v1" && t.Name() == "Duration" {
			return "duration"
		}
		if depth > 6 {
			return "struct"
		}
		var fields []string
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue // inline TypeMeta/ObjectMeta, or not serialised
			}
			fields = append(fields, name+":"+shape(f.Type, depth+1))
		}
		return "{" + strings.Join(fields, " ") + "}"
	case reflect.String:
		return "string"
	default:
		return t.Kind().String()
	}
}

func TestMirrorMatchesMetalLB(t *testing.T) {
	for _, tc := range []struct {
		name         string
		mirror, real any
	}{
		{"IPAddressPoolSpec", metallb.IPAddressPoolSpec{}, v1beta1.IPAddressPoolSpec{}},
		{"BGPPeerSpec (v1beta2)", metallb.BGPPeerSpec{}, v1beta2.BGPPeerSpec{}},
		{"BGPAdvertisementSpec", metallb.BGPAdvertisementSpec{}, v1beta1.BGPAdvertisementSpec{}},
		{"CommunitySpec", metallb.CommunitySpec{}, v1beta1.CommunitySpec{}},
		{"BFDProfileSpec", metallb.BFDProfileSpec{}, v1beta1.BFDProfileSpec{}},
		{"L2AdvertisementSpec", metallb.L2AdvertisementSpec{}, v1beta1.L2AdvertisementSpec{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, r := shape(reflect.TypeOf(tc.mirror), 0), shape(reflect.TypeOf(tc.real), 0)
			if m != r {
				t.Fatalf("the mirror differs from MetalLB's type:\nmirror:  %s\nmetallb: %s", m, r)
			}
		})
	}
	// v1beta1 BGPPeer: every field it has exists in the mirror with the same
	// JSON name (its own NodeSelector type has LabelSelector's JSON shape).
	mirror := map[string]bool{}
	mt := reflect.TypeOf(metallb.BGPPeerSpec{})
	for i := range mt.NumField() {
		name, _, _ := strings.Cut(mt.Field(i).Tag.Get("json"), ",")
		mirror[name] = true
	}
	rt := reflect.TypeOf(v1beta1.BGPPeerSpec{})
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		if !mirror[name] {
			t.Errorf("v1beta1 BGPPeer field %s is not in the mirror", name)
		}
	}
}
