import { createContext, useContext } from 'react';
import type { Session } from './api.js';

export interface SessionContext {
  session: Session;
  refresh(): Promise<void>;
  signedIn(session: Session): void;
}

export const SessionCtx = createContext<SessionContext | null>(null);
export const useSession = (): SessionContext => useContext(SessionCtx)!;
