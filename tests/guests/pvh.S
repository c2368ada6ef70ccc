/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * PVH entry so other VMMs (QEMU, for side-by-side runs) can boot the test guests too: a
 * 32-bit ring-0 trampoline that builds what the vmms worker gives us directly (identity map
 * of 0-4 GiB, user-accessible, 3-4 GiB uncached; ring-3 CS/SS; IOPL=3; RSP=0) and enters
 * _start in ring 3. The vmms worker prefers the VMMS note and never runs this code.
 */
#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define SEL_KCODE64 0x08
#define SEL_KDATA   0x10
#define SEL_UCODE64 0x18
#define SEL_UDATA   0x20

	.section .note.vmms, "a", @note
	.balign 4
	.long 4			/* namesz: "Xen" + NUL */
	.long 4			/* descsz: 32-bit entry address */
	.long XEN_ELFNOTE_PHYS32_ENTRY
	.asciz "Xen"
	.balign 4
	.long pvh_start32
	.balign 4

	.section .text.pvh, "ax", @progbits
	.code32
	.globl pvh_start32
	.type pvh_start32, @function
pvh_start32:
	/* PVH: 32-bit protected mode, paging off, interrupts off, no usable stack. */
	cld
	mov $pvh_tables, %edi
	mov $(6 * 4096 / 4), %ecx
	xor %eax, %eax
	rep stosl
	/* PML4[0] -> PDPT; PDPT[0..3] -> four page directories of 2 MiB pages. */
	movl $(pvh_tables + 0x1000 + 0x7), pvh_tables
	mov $pvh_tables + 0x1000, %edi
	mov $(pvh_tables + 0x2000 + 0x7), %eax
	mov $4, %ecx
1:	mov %eax, (%edi)
	add $8, %edi
	add $0x1000, %eax
	loop 1b
	/* 2048 PDEs: present, writable, user, 2 MiB; the top GiB (MMIO) also PWT|PCD. */
	mov $pvh_tables + 0x2000, %edi
	mov $0x87, %eax
	xor %edx, %edx
	mov $2048, %ecx
2:	cmp $1536, %edx
	jb 3f
	or $0x18, %eax
3:	mov %eax, (%edi)
	movl $0, 4(%edi)
	add $8, %edi
	add $0x200000, %eax
	inc %edx
	loop 2b

	lgdt pvh_gdt_desc
	mov %cr4, %eax
	or $0x20, %eax			/* PAE */
	mov %eax, %cr4
	mov $pvh_tables, %eax
	mov %eax, %cr3
	mov $0xc0000080, %ecx		/* EFER.LME */
	rdmsr
	or $0x100, %eax
	wrmsr
	mov %cr0, %eax
	or $0x80000001, %eax		/* PG | PE */
	mov %eax, %cr0
	ljmp $SEL_KCODE64, $pvh_start64

	.code64
pvh_start64:
	mov $SEL_KDATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov $pvh_tables + 0x6000, %rsp	/* a scratch stack for the iretq frame */
	pushq $(SEL_UDATA | 3)		/* SS */
	pushq $0			/* RSP: as the vmms worker leaves it */
	pushq $0x3002			/* RFLAGS: IOPL=3, IF=0 */
	pushq $(SEL_UCODE64 | 3)	/* CS */
	pushq $_start
	iretq
	.size pvh_start32, . - pvh_start32

	.section .rodata
	.balign 16
pvh_gdt:
	.quad 0
	.quad 0x00af9a000000ffff	/* 0x08 kernel code, 64-bit */
	.quad 0x00cf92000000ffff	/* 0x10 kernel data */
	.quad 0x00affa000000ffff	/* 0x18 user code, 64-bit, DPL 3 */
	.quad 0x00cff2000000ffff	/* 0x20 user data, DPL 3 */
pvh_gdt_end:
pvh_gdt_desc:
	.word pvh_gdt_end - pvh_gdt - 1
	.long pvh_gdt

	/* Outside .bss: crt0 clears .bss while these tables are live. */
	.section .pvh_tables, "aw", @nobits
	.balign 4096
pvh_tables:
	.skip 6 * 4096

	.section .note.GNU-stack, "", @progbits
