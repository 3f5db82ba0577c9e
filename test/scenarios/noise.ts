/**
 * Noise for the scenarios: a pair of namespaces that, the whole time,
 * makes drops that are not the scenario's. Frames for another host
 * (OTHERHOST: usually benign) at about 200 a second, and datagrams to a
 * closed port (a real cause) at about 4 a second: a diagnosis of the whole
 * host must still put the scenario's cause, in the scenario's namespace, first.
 * Where there is no Python (the test VM), the real noise comes from dropgen
 * and the benign noise is left out, which is said.
 */
import { execFileSync } from 'node:child_process';
import { dropgenBinary } from '../helpers/dropgen.js';
import { Background, buildNet, deleteNet, macOf, type Net } from './net.js';

function hasPython(): boolean {
  try {
    execFileSync('python3', ['-c', 'pass'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** How long the noise may run at most, whatever happens to the test process. */
const NOISE_MAX_S = 1800;

export class Noise {
  private readonly net: Net;
  private readonly sender: Background;

  constructor() {
    this.net = buildNet('noise');
    const src = macOf(this.net.a, 'a0').split(':').map((x) => `\\x${x}`).join('');
    const program = [
      'import socket, time',
      `end = time.time() + ${NOISE_MAX_S}`,
      'eth = socket.socket(17, 3, 0); eth.bind(("a0", 0))',
      // To a MAC that is not b0's: b0 receives it as PACKET_OTHERHOST and IP drops it.
      `frame = b"\\x02\\x00\\x00\\x00\\x00\\x99" + b"${src}" + b"\\x08\\x00" + b"\\x45" + b"\\x00" * 19 + b"noise"`,
      'udp = socket.socket(2, 2)',
      'i = 0',
      'while time.time() < end:',
      '    eth.send(frame)',
      '    if i % 50 == 0: udp.sendto(b"n", ("10.1.0.2", 9))',
      '    i += 1',
      '    time.sleep(0.005)',
    ].join('\n');
    if (hasPython()) this.sender = new Background(this.net.a, 'python3', ['-c', program]);
    else {
      process.stderr.write('# no python3: the noise is datagrams to a closed port only, without frames for another host\n');
      this.sender = new Background(this.net.a, dropgenBinary(), ['-m', 'noport', '-d', '600', '-r', '4', '-a', '10.1.0.2']);
    }
  }

  /** The namespaces the noise happens in (never a scenario's). */
  names(): string[] {
    return [this.net.a.name, this.net.b.name];
  }

  stop(): void {
    this.sender.stop();
    deleteNet(this.net);
  }
}
