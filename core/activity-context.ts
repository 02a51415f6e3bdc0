/** What an activity knows about itself, for log lines and for marking the rows it writes. */
import { Context } from '@temporalio/activity';

/** The workflow and attempt behind the running activity: every log line of an activity carries them. */
export function activityLogContext() {
  const { workflowExecution, activityId, attempt } = Context.current().info;
  return { workflow_id: workflowExecution?.workflowId, run_id: workflowExecution?.runId, activity_id: activityId, attempt };
}

/** Which activity writes a row (run id / activity id): the same on every attempt of it. */
export function currentSourceRef(): string {
  const info = Context.current().info;
  return `${info.workflowExecution?.runId ?? info.activityId}/${info.activityId}`;
}
