package metallb

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// Write prints the result as multi-document YAML for kubectl apply -f:
// each item's comments as "# " lines, then its object; disabled objects
// are printed commented out.
func Write(w io.Writer, res Result) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "# bgplb objects converted from MetalLB by `bgplb migrate metallb`.")
	fmt.Fprintln(bw, "# Read every comment: each names a MetalLB field that did not map and why.")
	for _, it := range res.Items {
		fmt.Fprintln(bw, "---")
		for _, c := range it.Comments {
			fmt.Fprintln(bw, "# "+onlyPrintable(c))
		}
		if it.Object == nil {
			continue
		}
		b, err := objectYAML(it.Object)
		if err != nil {
			return err
		}
		for _, line := range strings.SplitAfter(strings.TrimRight(string(b), "\n"), "\n") {
			prefix := ""
			if it.Disabled {
				prefix = "# "
			}
			fmt.Fprintln(bw, prefix+strings.TrimRight(line, "\n"))
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing the converted objects: %w", err)
	}
	return nil
}

// objectYAML renders an object without the fields a new object has no use
// for (an empty status, a null creationTimestamp).
func objectYAML(obj client.Object) ([]byte, error) {
	j, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", obj.GetName(), err)
	}
	var m map[string]any
	if err := json.Unmarshal(j, &m); err != nil {
		return nil, fmt.Errorf("encoding %s: %w", obj.GetName(), err)
	}
	delete(m, "status")
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "creationTimestamp")
	}
	b, err := yaml.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", obj.GetName(), err)
	}
	return b, nil
}
