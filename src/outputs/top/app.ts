/**
 * The interactive part of `dropmon top`: keys change the model's choices or
 * the view (table, a row's explanation, help), intervals and resizes redraw,
 * and every frame goes through the diffing screen. It owns no terminal: the
 * command hands it a write function, the size, and the keys, which is also
 * how the tests drive it.
 */
import type { LiveInterval, LiveOrigin } from '../../core/live.js';
import { GROUP_KEYS, SORT_KEYS, TopModel, type Row } from './model.js';
import { Screen } from './screen.js';
import { HELP_LINES, detailLines, pageFrame, tableFrame, tableLayout, type Explainer } from './view.js';

export interface TopTerminal {
  write(text: string): void;
  readonly columns: number;
  readonly rows: number;
}

/** A key as node:readline's keypress event gives it. */
export interface TopKey {
  readonly name?: string;
  readonly sequence?: string;
  readonly ctrl?: boolean;
  readonly meta?: boolean;
}

export interface TopAppOptions {
  readonly terminal: TopTerminal;
  readonly origin: LiveOrigin;
  readonly kb?: Explainer;
  readonly color: boolean;
  readonly unicode: boolean;
  /** Start with usually-benign drops hidden (--quiet-benign). */
  readonly hideBenign?: boolean;
  /** The operator asked to quit (q, Ctrl-C). */
  readonly onQuit: () => void;
}

type Mode = 'table' | 'detail' | 'help';

export class TopApp {
  readonly model: TopModel;
  private readonly screen: Screen;
  private origin: LiveOrigin;
  private mode: Mode = 'table';
  private selected: string | undefined;
  private selectedIndex = 0;
  private scroll = 0;
  private pageScroll = 0;
  private editing: string | undefined;
  private status = '';
  /** The row the explanation is about, as last seen (it stays readable after a clear). */
  private detailRow: Row | undefined;
  private rows: Row[] = [];

  constructor(private readonly o: TopAppOptions) {
    this.origin = o.origin;
    this.model = new TopModel(Math.max(2, Math.min(600, Math.round(60_000 / Math.max(100, o.origin.intervalMs)))));
    this.model.hideBenign = o.hideBenign ?? false;
    this.screen = new Screen((t) => o.terminal.write(t), o.color);
  }

  /** Bytes the screen wrote so far. */
  get written(): number {
    return this.screen.written;
  }

  interval(r: LiveInterval): void {
    this.model.add(r);
    this.render();
  }

  setOrigin(origin: LiveOrigin): void {
    this.origin = origin;
    this.render();
  }

  /** A line of news on the settings line (warnings, the remote connection); "" clears it. */
  setStatus(text: string): void {
    if (text === this.status) return;
    this.status = text;
    this.render();
  }

  /** The terminal was resized (or must be repainted whole). */
  resize(): void {
    this.screen.invalidate();
    this.render();
  }

  key(str: string | undefined, key: TopKey | undefined): void {
    const name = key?.name;
    if (key?.ctrl && name === 'c') return this.o.onQuit();
    if (key?.ctrl && name === 'l') return this.resize();
    if (this.editing !== undefined) return this.editKey(str, key);
    if (name === 'q' && !key?.ctrl) return this.o.onQuit();
    if (this.mode !== 'table') return this.pageKey(str, name);
    const page = Math.max(1, tableLayout(this.model, this.o.terminal.rows).bodyHeight - 1);
    switch (name) {
      case 'up':
        this.select(this.selectedIndex - 1);
        break;
      case 'down':
        this.select(this.selectedIndex + 1);
        break;
      case 'pageup':
        this.select(this.selectedIndex - page);
        break;
      case 'pagedown':
        this.select(this.selectedIndex + page);
        break;
      case 'home':
        this.select(0);
        break;
      case 'end':
        this.select(this.rows.length - 1);
        break;
      case 'return':
      case 'enter':
        if (this.rows.length) {
          this.detailRow = this.rows[Math.min(this.selectedIndex, this.rows.length - 1)];
          this.mode = 'detail';
          this.pageScroll = 0;
        }
        break;
      case 's':
        this.model.sort = SORT_KEYS[(SORT_KEYS.indexOf(this.model.sort) + 1) % SORT_KEYS.length];
        break;
      case 'g':
        this.model.group = GROUP_KEYS[(GROUP_KEYS.indexOf(this.model.group) + 1) % GROUP_KEYS.length];
        this.selected = undefined;
        this.selectedIndex = 0;
        this.scroll = 0;
        break;
      case 'b':
        this.model.hideBenign = !this.model.hideBenign;
        break;
      case 'p':
        this.model.setPaused(!this.model.paused);
        break;
      case 'c':
        this.model.clear();
        break;
      default:
        if (str === '/') this.editing = this.model.filter;
        else if (str === '?') {
          this.mode = 'help';
          this.pageScroll = 0;
        } else return;
    }
    this.render();
  }

  private editKey(str: string | undefined, key: TopKey | undefined): void {
    const name = key?.name;
    if (name === 'return' || name === 'enter') {
      this.model.filter = this.editing ?? '';
      this.editing = undefined;
      this.selectedIndex = 0;
      this.selected = undefined;
      this.scroll = 0;
    } else if (name === 'escape') this.editing = undefined;
    else if (name === 'backspace') this.editing = (this.editing ?? '').slice(0, -1);
    else if (key?.ctrl && name === 'u') this.editing = '';
    else if (str && !key?.ctrl && !key?.meta && /^[\x20-\x7e]+$/.test(str) && (this.editing ?? '').length < 64) this.editing += str;
    else return;
    this.render();
  }

  private pageKey(str: string | undefined, name: string | undefined): void {
    const page = Math.max(1, this.o.terminal.rows - 3);
    switch (name) {
      case 'escape':
      case 'backspace':
      case 'left':
      case 'return':
      case 'enter':
        this.mode = 'table';
        break;
      case 'up':
        this.pageScroll = Math.max(0, this.pageScroll - 1);
        break;
      case 'down':
        this.pageScroll++;
        break;
      case 'pageup':
        this.pageScroll = Math.max(0, this.pageScroll - page);
        break;
      case 'pagedown':
        this.pageScroll += page;
        break;
      case 'home':
        this.pageScroll = 0;
        break;
      default:
        if (str === '?') {
          this.mode = 'help';
          this.pageScroll = 0;
        } else return;
    }
    this.render();
  }

  private select(i: number): void {
    this.selectedIndex = Math.max(0, Math.min(i, this.rows.length - 1));
    this.selected = this.rows[this.selectedIndex]?.key;
  }

  render(): void {
    const w = Math.max(20, this.o.terminal.columns || 80);
    const h = Math.max(6, this.o.terminal.rows || 24);
    this.rows = this.model.rows();
    // The selection follows its row when the order changes; a vanished row leaves it at the same place.
    const at = this.selected === undefined ? -1 : this.rows.findIndex((r) => r.key === this.selected);
    if (at >= 0) this.selectedIndex = at;
    this.select(this.selectedIndex);
    if (this.mode === 'table') {
      const { bodyHeight } = tableLayout(this.model, h);
      if (this.selectedIndex < this.scroll) this.scroll = this.selectedIndex;
      if (this.selectedIndex >= this.scroll + bodyHeight) this.scroll = this.selectedIndex - bodyHeight + 1;
      this.scroll = Math.max(0, Math.min(this.scroll, Math.max(0, this.rows.length - bodyHeight)));
      const frame = tableFrame(
        { model: this.model, origin: this.origin, rows: this.rows, selected: this.selected, scroll: this.scroll, editing: this.editing, status: this.status, unicode: this.o.unicode },
        w,
        h,
      );
      this.screen.draw(frame, w, h);
      return;
    }
    if (this.mode === 'help') {
      this.screen.draw(pageFrame(' help', HELP_LINES.map((t) => [{ text: t }]), this.pageScroll, w, h), w, h);
      return;
    }
    const key = this.detailRow?.key;
    const row = this.rows.find((r) => r.key === key) ?? this.detailRow;
    if (!row) {
      this.mode = 'table';
      return this.render();
    }
    this.detailRow = row;
    const content = detailLines(row, this.model, this.o.kb, w, this.o.unicode);
    this.pageScroll = Math.min(this.pageScroll, Math.max(0, content.length - (h - 2)));
    this.screen.draw(pageFrame(' explanation and evidence', content, this.pageScroll, w, h), w, h);
  }
}
