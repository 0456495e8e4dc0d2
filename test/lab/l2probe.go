package lab

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Probes of L2 mode (ARP/NDP answers on a segment), shared by the netns
// and real-node e2e suites.

// HTTPGetIn opens a new TCP connection from namespace ns to addr:port,
// sends GET / and returns the body, trimmed.
func HTTPGetIn(ns string, addr netip.Addr, port uint16, timeout time.Duration) (string, error) {
	var conn net.Conn
	err := InNetns(ns, func() error {
		var err error
		conn, err = net.DialTimeout("tcp", netip.AddrPortFrom(addr, port).String(), timeout)
		return err
	})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(conn, "GET / HTTP/1.0\r\nHost: l2\r\n\r\n"); err != nil {
		return "", err
	}
	rd := bufio.NewReader(conn)
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			return "", err
		}
		if line == "\r\n" {
			break
		}
	}
	body, err := io.ReadAll(rd)
	return strings.TrimSpace(string(body)), err
}

// NeighMAC is namespace ns's neighbor entry for addr as `ip neigh` shows
// it ("" when unresolved).
func NeighMAC(ns string, addr netip.Addr) string {
	out, _ := exec.Command("ip", "-n", ns, "neigh", "show", addr.String()).Output()
	f := strings.Fields(string(out))
	if i := slices.Index(f, "lladdr"); i >= 0 && i+1 < len(f) {
		return f[i+1]
	}
	return ""
}

// LinkMAC is the MAC of interface ifname in namespace ns.
func LinkMAC(ns, ifname string) string {
	var mac string
	_ = InNetns(ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err == nil {
			mac = ifi.HardwareAddr.String()
		}
		return err
	})
	return mac
}

// ARPAnswers broadcasts one ARP request for target from namespace ns's
// interface ifname (sender address src) and returns the MACs that answer
// within wait, sorted: what tells "one node answers" from "two do", which
// a neighbor table (one entry per address) cannot show. A raw AF_PACKET
// socket with a hand-built 42-byte frame (RFC 826): the test must not
// depend on the product's own ARP code, and arping is not always installed.
func ARPAnswers(ns, ifname string, src, target netip.Addr, wait time.Duration) ([]string, error) {
	var fd int
	var ifi *net.Interface
	proto := int(htons(unix.ETH_P_ARP))
	err := InNetns(ns, func() error {
		var err error
		if ifi, err = net.InterfaceByName(ifname); err != nil {
			return err
		}
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto); err != nil {
			return fmt.Errorf("AF_PACKET socket: %w", err)
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifi.Index})
	})
	if err != nil {
		if fd > 0 {
			_ = unix.Close(fd)
		}
		return nil, err
	}
	defer unix.Close(fd)

	frame := make([]byte, 42)
	copy(frame[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(frame[6:12], ifi.HardwareAddr)
	binary.BigEndian.PutUint16(frame[12:14], unix.ETH_P_ARP)
	binary.BigEndian.PutUint16(frame[14:16], 1)      // Ethernet
	binary.BigEndian.PutUint16(frame[16:18], 0x0800) // IPv4
	frame[18], frame[19] = 6, 4
	binary.BigEndian.PutUint16(frame[20:22], 1) // request
	copy(frame[22:28], ifi.HardwareAddr)
	s4, t4 := src.As4(), target.As4()
	copy(frame[28:32], s4[:])
	copy(frame[38:42], t4[:])
	to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifi.Index, Halen: 6}
	copy(to.Addr[:], frame[0:6])
	if err := unix.Sendto(fd, frame, 0, to); err != nil {
		return nil, fmt.Errorf("sending ARP request: %w", err)
	}

	var macs []string
	buf := make([]byte, 1500)
	deadline := time.Now().Add(wait)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		tv := unix.NsecToTimeval(left.Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return nil, err
		}
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			if err == unix.EAGAIN || err == unix.EINTR {
				continue
			}
			return nil, err
		}
		p := buf[:n]
		if n < 42 || binary.BigEndian.Uint16(p[20:22]) != 2 || netip.AddrFrom4([4]byte(p[28:32])) != target {
			continue
		}
		mac := net.HardwareAddr(p[22:28]).String()
		if !slices.Contains(macs, mac) {
			macs = append(macs, mac)
		}
	}
	slices.Sort(macs)
	return macs, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
