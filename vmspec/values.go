package vmspec

import (
	"strconv"
	"strings"
)

// sizeUnits are the units of a size, in KiB.
var sizeUnits = map[byte]int64{'K': 1, 'M': 1 << 10, 'G': 1 << 20}

// ParseMemory reads a guest RAM size: a whole number of MiB written with K,
// M or G ("512M", "1G", "2048K"), within MinMemoryMiB..MaxMemoryMiB. A bare
// number is refused (which unit would it be?).
func ParseMemory(v string) (int, error) {
	if len(v) < 2 || sizeUnits[v[len(v)-1]] == 0 || !allDigits(v[:len(v)-1]) {
		return 0, fieldErr("memory", MessageSize, v)
	}
	n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
	const maxKiB = int64(MaxMemoryMiB) << 10
	if err != nil || n > maxKiB { // beyond any unit's range: too big
		return 0, fieldErr("memory", MessageMemoryRange, v, MinMemoryMiB, MaxMemoryMiB>>10)
	}
	kib := n * sizeUnits[v[len(v)-1]]
	if kib%1024 != 0 {
		return 0, fieldErr("memory", MessageWholeMiB, v)
	}
	mib := kib / 1024
	if mib < MinMemoryMiB || mib > MaxMemoryMiB {
		return 0, fieldErr("memory", MessageMemoryRange, v, MinMemoryMiB, MaxMemoryMiB>>10)
	}
	return int(mib), nil
}

// FormatMiB writes a size in MiB the way ParseMemory reads it ("1G",
// "512M").
func FormatMiB(mib int) string {
	if mib > 0 && mib%1024 == 0 {
		return strconv.Itoa(mib>>10) + "G"
	}
	return strconv.Itoa(mib) + "M"
}

// ParseHugepages reads SIZE:COUNT ("2M:64"; SIZE one of HugepageSizes,
// COUNT > 0); "" is none. Whether the pages fit in the guest's memory is
// Validate's check.
func ParseHugepages(v string) (Hugepages, error) {
	if v == "" {
		return Hugepages{}, nil
	}
	size, count, ok := strings.Cut(v, ":")
	n, err := strconv.Atoi(count)
	h := Hugepages{Size: size, Count: n}
	if !ok || !allDigits(count) || err != nil || h.MiB() < 2 || n < 1 {
		return Hugepages{}, fieldErr("guest_hugepages", MessageHugepages, v)
	}
	return h, nil
}

// parseBool reads a boolean field: "" (a directive or flag without a
// value) and "true" are true, "false" is false.
func parseBool(field, v string) (bool, error) {
	switch v {
	case "", "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fieldErr(field, MessageBool, v)
}

// splitList reads a comma-separated list, dropping empty items and spaces.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// CheckArch checks a guest arch name.
func CheckArch(a string) error { return oneOf("arch", a, Arches) }

// ParseVFIONICs reads the vfio_nics items: "all" alone, or NIC indexes
// (whole numbers of at most two digits below MaxNICs, each once). No items is none. Whether the indexes exist
// is Validate's check (it needs the NICs).
func ParseVFIONICs(items []string) (VFIONICs, error) {
	if len(items) == 1 && items[0] == "all" {
		return VFIONICs{All: true}, nil
	}
	var v VFIONICs
	seen := map[int]bool{}
	for _, it := range items {
		n, err := strconv.Atoi(it)
		if !allDigits(it) || len(it) > 2 || err != nil || n >= MaxNICs {
			return VFIONICs{}, fieldErr("vfio_nics", MessageVFIONIC, it, MaxNICs-1)
		}
		if seen[n] {
			return VFIONICs{}, fieldErr("vfio_nics", MessageVFIONICTwice, n)
		}
		seen[n] = true
		v.Indexes = append(v.Indexes, n)
	}
	return v, nil
}
