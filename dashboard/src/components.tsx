import { type ReactNode, useEffect, useRef, useState } from 'react';

/** The page's heading, focused when the page opens so screen readers and keyboards start there; it names the tab too. */
export function PageTitle({ children }: { children: ReactNode }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    ref.current?.focus();
  }, []);
  useEffect(() => {
    const text = ref.current?.textContent?.trim();
    document.title = text ? `${text} · Portcullis` : 'Portcullis';
  });
  return (
    <h1 ref={ref} tabIndex={-1}>
      {children}
    </h1>
  );
}

export function ErrorMessage({ message }: { message: string | undefined }) {
  if (!message) return null;
  return (
    <p className="error" role="alert">
      {message}
    </p>
  );
}

/**
 * A modal dialog on the native <dialog> element (focus stays inside, Escape closes). When it
 * closes, focus goes back to the element that opened it.
 */
export function Dialog({ title, open, onClose, children }: { title: string; open: boolean; onClose: () => void; children: ReactNode }) {
  const ref = useRef<HTMLDialogElement>(null);
  const opener = useRef<Element | null>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) {
      opener.current = document.activeElement;
      dialog.showModal();
    } else if (!open && dialog.open) {
      dialog.close();
    }
    if (!open && opener.current instanceof HTMLElement) {
      const back = opener.current;
      opener.current = null;
      if (back.isConnected) back.focus();
    }
  }, [open]);
  return (
    <dialog
      ref={ref}
      aria-labelledby="dialog-title"
      onCancel={(event) => {
        event.preventDefault();
        onClose();
      }}
    >
      {open && (
        <div className="dialog-body">
          <h2 id="dialog-title">{title}</h2>
          {children}
        </div>
      )}
    </dialog>
  );
}

export function CopyButton({ value, label }: { value: string; label: string }) {
  const [copied, setCopied] = useState<'no' | 'yes' | 'failed'>('no');
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
      setCopied('yes');
    } catch {
      setCopied('failed');
    }
  };
  return (
    <button type="button" className="secondary small" onClick={copy} aria-label={label}>
      {copied === 'yes' ? 'Copied' : copied === 'failed' ? 'Select and copy by hand' : 'Copy'}
    </button>
  );
}

export function Loading() {
  return (
    <p className="muted" aria-live="polite">
      Loading…
    </p>
  );
}

/** The current time, re-rendering every second while `active`: for countdowns. */
export function useNow(active: boolean): number {
  const [, setTick] = useState(0);
  useEffect(() => {
    if (!active) return;
    const timer = setInterval(() => setTick((n) => n + 1), 250);
    return () => clearInterval(timer);
  }, [active]);
  return Date.now();
}

/**
 * Runs one request at a time for a button: while it runs `busy` is true (the button shows it and
 * is disabled), and a second click or Enter is ignored, so a double click does the work once.
 */
export function useBusy(): [boolean, <T>(work: () => Promise<T>) => Promise<T | undefined>] {
  const running = useRef(false);
  const [busy, setBusy] = useState(false);
  const run = async <T,>(work: () => Promise<T>): Promise<T | undefined> => {
    if (running.current) return undefined;
    running.current = true;
    setBusy(true);
    try {
      return await work();
    } finally {
      running.current = false;
      setBusy(false);
    }
  };
  return [busy, run];
}

/** A submit or action button that shows its request is running and cannot be pressed again meanwhile. */
export function BusyButton({
  busy,
  busyLabel,
  children,
  className,
  type = 'button',
  onClick,
  label,
}: {
  busy: boolean;
  busyLabel: string;
  children: ReactNode;
  className?: string;
  type?: 'button' | 'submit';
  onClick?: () => void;
  label?: string;
}) {
  return (
    // aria-disabled, not disabled: a disabled button drops keyboard focus, and useBusy already ignores presses.
    <button
      type={type}
      className={[className, busy ? 'busy' : ''].filter(Boolean).join(' ') || undefined}
      onClick={busy ? undefined : onClick}
      aria-disabled={busy}
      aria-busy={busy}
      aria-label={busy ? undefined : label}
    >
      {busy ? busyLabel : children}
    </button>
  );
}
