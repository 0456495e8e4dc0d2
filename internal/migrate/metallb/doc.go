// Package metallb converts a MetalLB configuration into bgplb objects: it
// reads MetalLB's objects (YAML/JSON documents or the cluster), maps them
// onto bgplb's kinds in a pure function that names every field it cannot
// map, and writes the result as YAML. It backs `bgplb migrate metallb`.
package metallb
