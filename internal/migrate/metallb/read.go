package metallb

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
)

// Group is MetalLB's API group.
const Group = "metallb.io"

// maxDocuments bounds how many YAML documents one input may hold (List
// items included), so a hostile input cannot make Read work forever.
const maxDocuments = 100000

// Read reads MetalLB objects from YAML or JSON: several documents separated
// by "---", and `kind: List` documents (as `kubectl get -o yaml` prints),
// in any mix. Secrets are kept for the peers' passwordSecret; other kinds
// are listed in Config.Skipped. Fields MetalLB's API does not have are
// reported in Skipped too (a newer MetalLB, or a typo) and otherwise ignored.
func Read(r io.Reader) (*Config, error) {
	cfg := &Config{Secrets: map[string]Secret{}}
	dec := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	n := 0
	for doc := 1; ; doc++ {
		var obj map[string]any
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			return cfg, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading document %d: %w", doc, err)
		}
		if obj == nil {
			continue // an empty document
		}
		if err := cfg.add(obj, fmt.Sprintf("document %d", doc), &n); err != nil {
			return nil, err
		}
	}
}

// add files one decoded object (or the items of a List) into the config.
func (cfg *Config) add(obj map[string]any, where string, n *int) error {
	if *n++; *n > maxDocuments {
		return fmt.Errorf("more than %d objects", maxDocuments)
	}
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	if kind == "List" || strings.HasSuffix(kind, "List") && obj["items"] != nil {
		items, ok := obj["items"].([]any)
		if !ok {
			return fmt.Errorf("%s: %s has no list of items", where, kind)
		}
		for i, it := range items {
			m, ok := it.(map[string]any)
			if !ok {
				return fmt.Errorf("%s item %d: not an object", where, i)
			}
			// Items of a typed list (IPAddressPoolList) may omit their kind.
			if _, has := m["kind"]; !has && kind != "List" {
				m["kind"] = strings.TrimSuffix(kind, "List")
				m["apiVersion"] = apiVersion
			}
			if err := cfg.add(m, fmt.Sprintf("%s item %d", where, i), n); err != nil {
				return err
			}
		}
		return nil
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	group, version, _ := strings.Cut(apiVersion, "/")
	if version == "" {
		group, version = "", group
	}
	name := objName(obj)
	if group == "" && version == "v1" && kind == "Secret" {
		return cfg.addSecret(raw, where)
	}
	if group != Group {
		cfg.Skipped = append(cfg.Skipped, fmt.Sprintf("%s: %s %s %s is not a MetalLB object", where, apiVersion, kind, name))
		return nil
	}
	var target any
	switch kind {
	case "IPAddressPool":
		cfg.Pools = append(cfg.Pools, IPAddressPool{})
		target = &cfg.Pools[len(cfg.Pools)-1]
	case "BGPPeer":
		cfg.Peers = append(cfg.Peers, BGPPeer{})
		target = &cfg.Peers[len(cfg.Peers)-1]
	case "BGPAdvertisement":
		cfg.BGPAdvertisements = append(cfg.BGPAdvertisements, BGPAdvertisement{})
		target = &cfg.BGPAdvertisements[len(cfg.BGPAdvertisements)-1]
	case "Community":
		cfg.Communities = append(cfg.Communities, Community{})
		target = &cfg.Communities[len(cfg.Communities)-1]
	case "BFDProfile":
		cfg.BFDProfiles = append(cfg.BFDProfiles, BFDProfile{})
		target = &cfg.BFDProfiles[len(cfg.BFDProfiles)-1]
	case "L2Advertisement":
		cfg.L2Advertisements = append(cfg.L2Advertisements, L2Advertisement{})
		target = &cfg.L2Advertisements[len(cfg.L2Advertisements)-1]
	default:
		// Status kinds (ServiceBGPStatus, ServiceL2Status, ConfigurationState)
		// and the legacy ConfigMap-era kinds carry no configuration.
		cfg.Skipped = append(cfg.Skipped, fmt.Sprintf("%s: %s %s %s is not configuration bgplb converts", where, apiVersion, kind, name))
		return nil
	}
	strict, err := kjson.UnmarshalStrict(raw, target)
	if err != nil {
		return fmt.Errorf("%s: %s %s: %w", where, kind, name, err)
	}
	for _, e := range strict {
		cfg.Skipped = append(cfg.Skipped, fmt.Sprintf("%s: %s %s: %v (ignored: not in MetalLB v0.16's API)", where, kind, name, e))
	}
	return nil
}

func (cfg *Config) addSecret(raw []byte, where string) error {
	var s struct {
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
		Type       string            `json:"type"`
		Data       map[string][]byte `json:"data"`
		StringData map[string]string `json:"stringData"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return fmt.Errorf("%s: Secret: %w", where, err)
	}
	sec := Secret{Namespace: s.Metadata.Namespace, Name: s.Metadata.Name, Type: s.Type, Data: s.Data}
	if sec.Data == nil {
		sec.Data = map[string][]byte{}
	}
	for k, v := range s.StringData {
		sec.Data[k] = []byte(v)
	}
	cfg.Secrets[sec.Namespace+"/"+sec.Name] = sec
	return nil
}

// objName is "namespace/name" (or "name") of a decoded object, for messages.
func objName(obj map[string]any) string {
	md, _ := obj["metadata"].(map[string]any)
	name, _ := md["name"].(string)
	if ns, _ := md["namespace"].(string); ns != "" {
		return ns + "/" + name
	}
	return name
}
